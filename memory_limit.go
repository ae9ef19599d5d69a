package jobs

import (
	"time"

	"github.com/jobsmith/jobs/internal/admit"
)

// This file holds the flow control of [MemoryRepository]'s claims: the
// counts of running jobs and the start log that package admit decides on.
// The repository's mutex makes each claim's count and admission atomic.

// memStart is one start in the log of a rate-limited scope.
type memStart struct {
	key string
	at  time.Time
}

// admitter returns the admitter of claim q at time t with the running jobs
// and the recent starts counted, or nil when q has no limit. The caller
// holds the mutex.
func (m *MemoryRepository) admitter(q ClaimQuery, t time.Time) *admit.Admitter {
	ad := admit.New(t, admit.Limits(q.KindLimits), admit.Limits(q.QueueLimits))
	if ad.Empty() {
		return nil
	}
	for _, r := range m.running {
		j := &r.job
		ad.Running(j.Kind, j.Queue, j.ConcurrencyKey, 1)
	}
	scopes, window := ad.RateScopes()
	for _, s := range scopes {
		log := m.starts[s]
		// Drop the starts that no window of any limit can reach again.
		i := 0
		for i < len(log) && !log[i].at.After(t.Add(-admit.MaxPeriod)) {
			i++
		}
		log = log[i:]
		m.starts[s] = log
		for _, st := range log {
			if st.at.After(t.Add(-window)) {
				ad.Started(s, st.key, st.at)
			}
		}
	}
	return ad
}

// logStart records the start of j at t in the logs of its rate-limited
// scopes. The caller holds the mutex.
func (m *MemoryRepository) logStart(ad *admit.Admitter, j *Job, t time.Time) {
	for _, s := range ad.Logged(j.Kind, j.Queue) {
		m.starts[s] = append(m.starts[s], memStart{key: j.ConcurrencyKey, at: t})
	}
}

// memKey counts the pending jobs of one queue and concurrency key, with
// the largest rank among them (an upper bound once jobs left out of order).
type memKey struct {
	n    int
	last int64
}

// pendingKey counts r in (d = 1) or out of (d = -1) the pending jobs of its
// queue and key. The caller holds the mutex.
func (m *MemoryRepository) pendingKey(r *memRecord, d int) {
	p := admit.QueueKey{Queue: r.job.Queue, Key: r.job.ConcurrencyKey}
	k := m.keys[p]
	if k == nil {
		k = &memKey{last: r.rank}
		m.keys[p] = k
	}
	k.n += d
	k.last = max(k.last, r.rank)
	if k.n <= 0 {
		delete(m.keys, p)
	}
}

// ranks returns the fair ranks of new jobs (see package admit) at time t.
// The caller holds the mutex.
func (m *MemoryRepository) ranks(js []*Job, t time.Time) []int64 {
	nj := make([]admit.NewJob, len(js))
	for i, j := range js {
		nj[i] = admit.NewJob{Queue: j.Queue, Key: j.ConcurrencyKey, Priority: j.Priority, RunAt: j.RunAt, ID: j.ID}
	}
	heads := map[admit.QueueKey]admit.Head{}
	v := map[string]*admit.Head{} // V by queue
	for _, p := range admit.Pairs(nj) {
		hv := v[p.Queue]
		if hv == nil {
			hv = &admit.Head{}
			for key, b := range m.buckets {
				if key.queue != p.Queue {
					continue
				}
				b.promote(t, m.dueRank)
				if r := b.peek(); r != nil && (!hv.HasV || r.rank < hv.V) {
					hv.V, hv.HasV = r.rank, true
				}
			}
			v[p.Queue] = hv
		}
		h := admit.Head{V: hv.V, HasV: hv.HasV}
		if k := m.keys[p]; k != nil {
			h.L, h.HasL = k.last, true
		}
		heads[p] = h
	}
	return admit.Ranks(nj, heads)
}

// memFits tracks, during one limited claim, how many ready jobs of each
// eligible bucket may still fit the limits, so that the claim stops
// popping a bucket whose remaining jobs all belong to full keys (10 000
// jobs of one user at its limit) instead of walking them all.
type memFits struct {
	ad   *admit.Admitter
	full map[*memBucket]map[string]bool // keys that fit no more, by bucket
	left map[*memBucket]int             // ready jobs that may still fit
}

// newMemFits counts the ready jobs that may fit in each bucket; nil
// ad: no limits, everything fits.
func newMemFits(ad *admit.Admitter, eligible []*memBucket) *memFits {
	f := &memFits{ad: ad, full: map[*memBucket]map[string]bool{}, left: map[*memBucket]int{}}
	if ad == nil {
		return f
	}
	fullKeys := ad.FullKeys()
	for _, b := range eligible {
		full := map[string]bool{}
		for _, s := range []admit.Scope{{Type: admit.KindScope, Name: b.key.kind}, {Type: admit.QueueScope, Name: b.key.queue}} {
			for _, k := range fullKeys[s] {
				full[k] = true
			}
		}
		f.full[b] = full
		for k, n := range b.readyKeys {
			if k == "" || !full[k] {
				f.left[b] += n
			}
		}
	}
	return f
}

// any reports whether a ready job of b may still fit.
func (f *memFits) any(b *memBucket) bool { return f.ad == nil || f.left[b] > 0 }

// popped notes that a ready job of b with the key was taken out for the
// admission, and reports whether it may fit.
func (f *memFits) popped(b *memBucket, key string) bool {
	if key != "" && f.full[b][key] {
		return false
	}
	f.left[b]--
	return true
}

// refused notes that a job of b with the key did not fit: the key is full
// now (its remaining jobs are no longer counted), or its kind or queue is.
func (f *memFits) refused(b *memBucket, key string) {
	if key != "" && !f.full[b][key] {
		f.full[b][key] = true
		f.left[b] -= b.readyKeys[key]
	}
	for _, s := range f.ad.Closed() {
		if (s.Type == admit.KindScope && s.Name == b.key.kind) || (s.Type == admit.QueueScope && s.Name == b.key.queue) {
			f.left[b] = 0
		}
	}
}

// dueRank is the fair rank of a job that comes due (see package admit):
// after the pending jobs of its key in its queue, and not before the
// first ready job of its queue. The caller holds the mutex.
func (m *MemoryRepository) dueRank(r *memRecord) int64 {
	var v int64
	first := true
	for key, b := range m.buckets {
		if key.queue != r.job.Queue {
			continue
		}
		if top := b.peek(); top != nil && (first || top.rank < v) {
			v, first = top.rank, false
		}
	}
	if k := m.keys[admit.QueueKey{Queue: r.job.Queue, Key: r.job.ConcurrencyKey}]; k != nil && k.n > 1 {
		v = max(v, k.last+1)
	}
	return v
}
