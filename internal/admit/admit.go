// Package admit decides which claimable jobs the flow-control limits let
// start (jobs.Limit, jobs.ClaimQuery.KindLimits and QueueLimits). Every
// repository of this module calls it inside its claim, after it counted the
// running jobs and the recent starts of the limited kinds and queues, so
// that memory, SQLite and PostgreSQL admit exactly alike; each repository
// makes the counts and the claim atomic in its own way.
package admit

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Limit mirrors jobs.Limit field for field (jobs.Limit converts to it).
type Limit struct {
	Running int
	PerKey  int
	Rate    int
	KeyRate int
	Period  time.Duration
}

// Limits converts limits of a type with Limit's fields (jobs.Limit) by name.
func Limits[L ~struct {
	Running int
	PerKey  int
	Rate    int
	KeyRate int
	Period  time.Duration
}](m map[string]L) map[string]Limit {
	out := make(map[string]Limit, len(m))
	for k, l := range m {
		out[k] = Limit(l)
	}
	return out
}

// Bounds of a Limit's fields.
const (
	MaxCount  = math.MaxInt32
	MinPeriod = time.Millisecond
	MaxPeriod = 24 * time.Hour
)

// Check returns why l is not a valid limit, or "".
func Check(l Limit) string {
	for _, f := range []struct {
		name string
		v    int
	}{{"running", l.Running}, {"per key", l.PerKey}, {"rate", l.Rate}, {"key rate", l.KeyRate}} {
		if f.v < 0 || f.v > MaxCount {
			return fmt.Sprintf("%s limit %d is not in [0, %d]", f.name, f.v, MaxCount)
		}
	}
	switch {
	case l.Period < 0:
		return fmt.Sprintf("period %v is negative", l.Period)
	case l.Period != 0 && l.Rate == 0 && l.KeyRate == 0:
		return fmt.Sprintf("period %v without a rate", l.Period)
	case l.Period != 0 && (l.Period < MinPeriod || l.Period > MaxPeriod):
		return fmt.Sprintf("period %v is not in [%v, %v]", l.Period, MinPeriod, MaxPeriod)
	}
	return ""
}

// Window is the rate window of l: its Period, or 1s when zero.
func (l Limit) Window() time.Duration {
	if l.Period == 0 {
		return time.Second
	}
	return l.Period
}

// HasRate reports whether l limits starts.
func (l Limit) HasRate() bool { return l.Rate > 0 || l.KeyRate > 0 }

// Zero reports whether l limits nothing.
func (l Limit) Zero() bool { return l.Running == 0 && l.PerKey == 0 && !l.HasRate() }

// Scope kinds: a limit belongs to a kind or to a queue.
const (
	KindScope  = 'k'
	QueueScope = 'q'
)

// Scope names one limited kind or queue.
type Scope struct {
	Type byte // KindScope or QueueScope
	Name string
}

// String is the scope as stored in the start log of the SQL repositories:
// "k:" or "q:" and the name.
func (s Scope) String() string { return string(s.Type) + ":" + s.Name }

// scopeState is what the admitter knows of one scope.
type scopeState struct {
	limit   Limit
	running int
	perKey  map[string]int
	starts  []time.Time            // in the window, any order
	keyRuns map[string][]time.Time // starts in the window by key
}

// Admitter counts one claim's admissions. It is not safe for concurrent
// use: a repository uses one per claim, inside the claim's atomic section.
type Admitter struct {
	now    time.Time
	scopes map[Scope]*scopeState
	next   time.Time // earliest time a held-back start may come, zero: none
}

// New returns an Admitter for the limits of one claim at time now. Zero
// limits are ignored.
func New(now time.Time, kinds, queues map[string]Limit) *Admitter {
	a := &Admitter{now: now, scopes: map[Scope]*scopeState{}}
	add := func(t byte, m map[string]Limit) {
		for name, l := range m {
			if !l.Zero() {
				a.scopes[Scope{t, name}] = &scopeState{limit: l, perKey: map[string]int{}, keyRuns: map[string][]time.Time{}}
			}
		}
	}
	add(KindScope, kinds)
	add(QueueScope, queues)
	return a
}

// Empty reports whether no limit applies.
func (a *Admitter) Empty() bool { return len(a.scopes) == 0 }

// Scopes returns the limited scopes, sorted (kinds first, then queues, by
// name): the order in which a repository takes per-scope locks.
func (a *Admitter) Scopes() []Scope {
	out := make([]Scope, 0, len(a.scopes))
	for s := range a.scopes {
		out = append(out, s)
	}
	slices.SortFunc(out, func(x, y Scope) int {
		if x.Type != y.Type {
			return int(x.Type) - int(y.Type)
		}
		if x.Name < y.Name {
			return -1
		}
		if x.Name > y.Name {
			return 1
		}
		return 0
	})
	return out
}

// Limited reports whether scope s has a limit.
func (a *Admitter) Limited(s Scope) bool { return a.scopes[s] != nil }

// RateScopes returns the limited scopes that limit starts, with the
// longest window among them.
func (a *Admitter) RateScopes() ([]Scope, time.Duration) {
	var out []Scope
	var w time.Duration
	for _, s := range a.Scopes() {
		if l := a.scopes[s].limit; l.HasRate() {
			out = append(out, s)
			w = max(w, l.Window())
		}
	}
	return out, w
}

// Running counts n running jobs of the kind, queue and concurrency key.
func (a *Admitter) Running(kind, queue, key string, n int) {
	for _, s := range [2]Scope{{KindScope, kind}, {QueueScope, queue}} {
		if st := a.scopes[s]; st != nil {
			st.running += n
			if key != "" {
				st.perKey[key] += n
			}
		}
	}
}

// Started records a start, at time at, of a job with the concurrency key in
// scope s (from the start log); starts outside the window are ignored.
func (a *Admitter) Started(s Scope, key string, at time.Time) {
	st := a.scopes[s]
	if st == nil || !st.limit.HasRate() || !at.After(a.now.Add(-st.limit.Window())) {
		return
	}
	st.starts = append(st.starts, at)
	if key != "" {
		st.keyRuns[key] = append(st.keyRuns[key], at)
	}
}

// Closed returns the scopes that admit no job at all now (their running
// limit or rate is reached), so that the claim can leave their jobs out.
func (a *Admitter) Closed() []Scope {
	var out []Scope
	for _, s := range a.Scopes() {
		st := a.scopes[s]
		l := st.limit
		if (l.Running > 0 && st.running >= l.Running) || (l.Rate > 0 && len(st.starts) >= l.Rate) {
			out = append(out, s)
			if l.Rate > 0 && len(st.starts) >= l.Rate {
				a.hold(st.starts, l.Rate, l.Window())
			}
		}
	}
	return out
}

// Admit reports whether a job of the kind, queue and concurrency key may
// start, and if so counts it as running and started.
func (a *Admitter) Admit(kind, queue, key string) bool {
	ss := [2]*scopeState{a.scopes[Scope{KindScope, kind}], a.scopes[Scope{QueueScope, queue}]}
	for _, st := range ss {
		if st == nil {
			continue
		}
		l := st.limit
		if l.Running > 0 && st.running >= l.Running {
			return false
		}
		if l.Rate > 0 && len(st.starts) >= l.Rate {
			a.hold(st.starts, l.Rate, l.Window())
			return false
		}
		if key == "" {
			continue
		}
		if l.PerKey > 0 && st.perKey[key] >= l.PerKey {
			return false
		}
		if l.KeyRate > 0 && len(st.keyRuns[key]) >= l.KeyRate {
			a.hold(st.keyRuns[key], l.KeyRate, l.Window())
			return false
		}
	}
	for _, st := range ss {
		if st == nil {
			continue
		}
		st.running++
		if st.limit.HasRate() {
			st.starts = append(st.starts, a.now)
		}
		if key != "" {
			st.perKey[key]++
			if st.limit.HasRate() {
				st.keyRuns[key] = append(st.keyRuns[key], a.now)
			}
		}
	}
	return true
}

// hold notes that a rate of n starts per window held a start back, given
// the starts in the window: the next start may come when the oldest start
// that keeps the count at n leaves the window.
func (a *Admitter) hold(starts []time.Time, n int, window time.Duration) {
	s := slices.Clone(starts)
	slices.SortFunc(s, func(x, y time.Time) int { return x.Compare(y) })
	t := s[len(s)-n].Add(window)
	if a.next.IsZero() || t.Before(a.next) {
		a.next = t
	}
}

// NextStart returns the earliest time at which a start that a rate held
// back in this claim may come, or the zero time when no rate held one.
func (a *Admitter) NextStart() time.Time { return a.next }

// Logged reports, for a job just admitted, the scopes whose start log must
// record its start (those with a rate).
func (a *Admitter) Logged(kind, queue string) []Scope {
	var out []Scope
	for _, s := range [2]Scope{{KindScope, kind}, {QueueScope, queue}} {
		if st := a.scopes[s]; st != nil && st.limit.HasRate() {
			out = append(out, s)
		}
	}
	return out
}

// FullKeys returns, for each limited scope, the concurrency keys that admit
// no job now (their per-key running limit or key rate is reached), so that
// a claim can leave their jobs out.
func (a *Admitter) FullKeys() map[Scope][]string {
	out := map[Scope][]string{}
	for _, s := range a.Scopes() {
		st := a.scopes[s]
		l := st.limit
		if l.PerKey > 0 {
			for k, n := range st.perKey {
				if n >= l.PerKey {
					out[s] = append(out[s], k)
				}
			}
		}
		if l.KeyRate > 0 {
			for k, ts := range st.keyRuns {
				if len(ts) >= l.KeyRate && (l.PerKey == 0 || st.perKey[k] < l.PerKey) {
					a.hold(ts, l.KeyRate, l.Window())
					out[s] = append(out[s], k)
				}
			}
		}
		slices.Sort(out[s])
	}
	return out
}
