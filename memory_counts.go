package jobs

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/jobsmith/jobs/internal/rules"
)

// Queues implements [JobRepository.Queues] by reading every job: O(n).
func (m *MemoryRepository) Queues(ctx context.Context) ([]QueueStats, error) {
	if err := m.lock(ctx, "queues"); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	now := rules.Now()
	byName := map[string]*QueueStats{}
	oldest := map[string]time.Time{}
	queue := func(name string) *QueueStats {
		q := byName[name]
		if q == nil {
			q = &QueueStats{Name: name, Counts: map[Status]int{}}
			byName[name] = q
		}
		return q
	}
	for _, r := range m.order {
		j := r.job
		q := queue(j.Queue)
		q.Counts[j.Status]++
		if j.Status == StatusPending && !j.RunAt.After(now) {
			q.Ready++
			if t, ok := oldest[j.Queue]; !ok || j.RunAt.Before(t) {
				oldest[j.Queue] = j.RunAt
			}
		}
	}
	for name := range m.paused {
		queue(name).Paused = true
	}
	qs := make([]QueueStats, 0, len(byName))
	for _, q := range byName {
		if t, ok := oldest[q.Name]; ok {
			q.Latency = now.Sub(t)
		}
		qs = append(qs, *q)
	}
	slices.SortFunc(qs, func(a, b QueueStats) int { return cmp.Compare(a.Name, b.Name) })
	return qs, nil
}
