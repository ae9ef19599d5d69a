package proctest

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// The figures a write-outage run logs, to explain a failure: outages,
// outcomes, and the story of a few jobs that went wrong.

// logOutages logs the figures of one run.
func logOutages(t testing.TB, began time.Time, outs []outage, w *writeLock, drain time.Duration, left int, r outageResult) {
	t.Helper()
	var lengths []string
	var total time.Duration
	for _, o := range outs {
		lengths = append(lengths, fmt.Sprintf("%.1f–%.1fs (%.1fs, lock after %v)", o.held.Sub(began).Seconds(),
			o.released.Sub(began).Seconds(), o.length().Seconds(), o.held.Sub(o.asked).Round(time.Millisecond)))
		total += o.length()
	}
	lock := "BEGIN IMMEDIATE"
	if w.backend == "postgres" {
		lock = "LOCK TABLE jobs IN " + w.mode + " MODE"
	}
	t.Logf("%d outages (%s), %v in all, from the first enqueue: %s", len(outs), lock,
		total.Round(100*time.Millisecond), strings.Join(lengths, ", "))
	t.Logf("drain: %v (%d left); statuses: %v", drain.Round(100*time.Millisecond), left, r.byStatus)
	t.Logf("handler returned success but job not succeeded: %d %v; jobs with 2+ done: %d, 2+ start: %d; "+
		"handlers cancelled by a lost lease: %d", len(r.doneNotSucceeded), r.doneBadStatus, r.twoDone, r.twoStart,
		r.leaseLostHandlers)
	for _, e := range sortedKeys(r.failedBy) {
		f := r.failedBy[e]
		t.Logf("failed with error %q: %d after their handler returned success, %d started but not done, "+
			"%d never started", e, f[0], f[1], f[2])
	}
	t.Logf("ledger events: %v", r.ledgerEvents)
}

// logBadByOutage logs, for each outage, how many of the jobs that did not
// end succeeded although their handler returned success had returned
// during it or before it (since the previous one), and returns one such job
// of each kind to tell the story of, one that returned after the last
// outage first.
func logBadByOutage(t testing.TB, outs []outage, l *ledger, bad []uuid.UUID) (samples []uuid.UUID) {
	t.Helper()
	inside, before := make([]int, len(outs)), make([]int, len(outs))
	after := 0
	sample := func(n int, id uuid.UUID) {
		if n == 1 {
			samples = append(samples, id)
		}
	}
	for _, id := range bad {
		var done time.Time
		for _, e := range l.byJob[id] {
			if e.event == "done" {
				done = e.at()
			}
		}
		i := slices.IndexFunc(outs, func(o outage) bool { return !o.released.Before(done) })
		switch {
		case i < 0:
			after++
			if after == 1 {
				samples = slices.Insert(samples, 0, id)
			}
		case done.Before(outs[i].held):
			before[i]++
			sample(before[i], id)
		default:
			inside[i]++
			sample(inside[i], id)
		}
	}
	var parts []string
	for i, o := range outs {
		parts = append(parts, fmt.Sprintf("#%d (%.1fs): %d+%d", i+1, o.length().Seconds(), inside[i], before[i]))
	}
	t.Logf("of these, returned during+before each outage: %s; after the last: %d", strings.Join(parts, ", "), after)
	return samples
}

// logJobStory logs what happened to one job that did not end succeeded: its
// row, then its ledger lines, the outages around it and the workers' log
// lines about it in time order, in seconds from the first enqueue (fenced
// lines carry no time and come last).
func logJobStory(t testing.TB, c *cluster, began time.Time, outs []outage, l *ledger, logs []logLine, id uuid.UUID, title string) {
	t.Helper()
	type event struct {
		at   time.Time
		text string
	}
	var evs []event
	for _, e := range l.byJob[id] {
		rest := e.rest
		if !e.at().IsZero() { // the time goes first instead
			rest = rest[:max(0, strings.LastIndexByte(rest, ' '))]
		}
		evs = append(evs, event{e.at(), fmt.Sprintf("ledger %s pid %d %s", e.event, e.pid, rest)})
	}
	j := c.job(id)
	for i, o := range outs {
		if o.released.After(j.StartedAt.Add(-outageLease)) && o.held.Before(j.FinishedAt.Add(outageLease)) {
			evs = append(evs, event{o.held, fmt.Sprintf("outage %d begins", i+1)},
				event{o.released, fmt.Sprintf("outage %d ends", i+1)})
		}
	}
	for _, ll := range logs {
		if ll.job == id {
			evs = append(evs, event{ll.at, "log " + ll.text})
		}
	}
	slices.SortStableFunc(evs, func(a, b event) int {
		switch {
		case a.at.IsZero() || b.at.IsZero():
			return cmp.Compare(btoi(a.at.IsZero()), btoi(b.at.IsZero()))
		default:
			return a.at.Compare(b.at)
		}
	})
	rel := func(at time.Time) string { return fmt.Sprintf("%+6.2fs", at.Sub(began).Seconds()) }
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %s, error %q, attempt %d, started %s, finished %s", title, id, j.Status,
		j.Error, j.Attempt, rel(j.StartedAt), rel(j.FinishedAt))
	for _, e := range evs {
		at := "      ?"
		if !e.at.IsZero() {
			at = rel(e.at)
		}
		fmt.Fprintf(&b, "\n  %s %s", at, e.text)
	}
	t.Log(b.String())
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
