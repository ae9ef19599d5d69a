package jobs

import (
	"context"
	"time"
)

// QueueStats describes one queue, for [JobRepository.Queues]: how many of
// its jobs are in each status, and how long the oldest of those ready to
// run has waited (the queue's latency).
type QueueStats struct {
	// Name is the queue's name.
	Name string `json:"name"`
	// Paused reports whether the queue is paused (see
	// [JobRepository.PauseQueue]).
	Paused bool `json:"paused"`
	// Counts holds how many of the queue's jobs are in each status;
	// statuses without jobs are absent. It is never nil.
	Counts map[Status]int `json:"counts"`
	// Ready is how many of its pending jobs may run now (their RunAt has
	// come); the other pending jobs wait for a later RunAt.
	Ready int `json:"ready"`
	// Latency is how long the ready job whose RunAt is oldest has waited
	// since its RunAt, at the time of the call (in JSON: nanoseconds); 0
	// when no job is ready.
	Latency time.Duration `json:"latency"`
}

// Queues describes every queue that has jobs or is paused, sorted by
// name; see [JobRepository.Queues]. Unlike [Runner.Stats] it does not
// count by kind, and it tells each queue's latency.
func (r *Runner) Queues(ctx context.Context) ([]QueueStats, error) { return r.repo.Queues(ctx) }
