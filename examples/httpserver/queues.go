package main

import (
	"context"
	"net/http"
	"slices"

	"github.com/jobsmith/jobs"
)

// queueInfo is one queue in GET /api/queues: its jobs counted by status
// (every status present, zeros too), whether it is paused, how many of its
// pending jobs are ready to run, and how long the oldest of those has
// waited (seconds).
type queueInfo struct {
	Name           string              `json:"name"`
	Paused         bool                `json:"paused"`
	Counts         map[jobs.Status]int `json:"counts"`
	Ready          int                 `json:"ready"`
	LatencySeconds float64             `json:"latency_seconds"`
}

// allStatuses are the statuses every queueInfo counts.
var allStatuses = []jobs.Status{jobs.StatusPending, jobs.StatusRunning,
	jobs.StatusSucceeded, jobs.StatusFailed, jobs.StatusCanceled}

// queueOf returns the queue called name as qs describes it (a queue
// absent from qs has no jobs and is not paused).
func queueOf(qs []jobs.QueueStats, name string) queueInfo {
	q := queueInfo{Name: name, Counts: map[jobs.Status]int{}}
	if i := slices.IndexFunc(qs, func(q jobs.QueueStats) bool { return q.Name == name }); i >= 0 {
		q.Paused, q.Ready, q.LatencySeconds = qs[i].Paused, qs[i].Ready, qs[i].Latency.Seconds()
		for st, n := range qs[i].Counts {
			q.Counts[st] = n
		}
	}
	for _, st := range allStatuses {
		q.Counts[st] += 0
	}
	return q
}

// listQueues handles GET /api/queues: {"queues": [queueInfo…]}, every
// queue that has jobs and every paused queue, sorted by name. It reads
// Runner.Queues, whose cost does not grow with the finished jobs kept.
func (s *server) listQueues(w http.ResponseWriter, r *http.Request) {
	qs, err := s.runner.Queues(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := make([]queueInfo, len(qs))
	for i, q := range qs {
		out[i] = queueOf(qs, q.Name)
	}
	writeJSON(w, http.StatusOK, map[string][]queueInfo{"queues": out})
}

// pauseQueue handles POST /api/queues/{name}/pause: 200 with the queue as
// GET /api/queues shows it. A queue without jobs may be paused, and
// pausing a paused queue changes nothing; a malformed name is 400. No job
// of a paused queue starts until it is resumed, in any server process.
func (s *server) pauseQueue(w http.ResponseWriter, r *http.Request) {
	s.setPaused(w, r, s.runner.PauseQueue)
}

// resumeQueue handles POST /api/queues/{name}/resume, like pauseQueue.
func (s *server) resumeQueue(w http.ResponseWriter, r *http.Request) {
	s.setPaused(w, r, s.runner.ResumeQueue)
}

// setPaused applies set (Runner.PauseQueue or ResumeQueue) to the queue
// named in the path and writes the queue as it is then.
func (s *server) setPaused(w http.ResponseWriter, r *http.Request, set func(ctx context.Context, queue string) error) {
	name := r.PathValue("name")
	if err := set(r.Context(), name); err != nil {
		s.fail(w, r, err)
		return
	}
	qs, err := s.runner.Queues(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, queueOf(qs, name))
}
