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
	ad := admit.New(t, admitLimits(q.KindLimits), admitLimits(q.QueueLimits))
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
