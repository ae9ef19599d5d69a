package main

import (
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/jobsmith/jobs"
)

// queueInfo is one queue in GET /api/queues: its jobs counted by status
// (every status present, zeros too), whether it is paused, and since when
// its oldest due pending job has waited (its latency; absent when none
// waits).
type queueInfo struct {
	Name          string              `json:"name"`
	Paused        bool                `json:"paused"`
	Counts        map[jobs.Status]int `json:"counts"`
	OldestPending *time.Time          `json:"oldest_pending,omitempty"`
}

// allStatuses are the statuses every queueInfo counts.
var allStatuses = []jobs.Status{jobs.StatusWaiting, jobs.StatusPending, jobs.StatusRunning,
	jobs.StatusSucceeded, jobs.StatusFailed, jobs.StatusCanceled}

// queueOf returns the queue called name as s counts it.
func queueOf(s *jobs.Stats, name string) queueInfo {
	q := queueInfo{Name: name, Paused: slices.Contains(s.Paused, name), Counts: map[jobs.Status]int{}}
	for _, st := range allStatuses {
		q.Counts[st] = s.ByQueue[name][st]
	}
	if t, ok := s.OldestPending[name]; ok {
		q.OldestPending = &t
	}
	return q
}

// queueList returns the queues of s, sorted by name: every queue that has
// jobs, and every paused queue, with jobs or not.
func queueList(s *jobs.Stats) []queueInfo {
	names := slices.Clone(s.Paused)
	for name := range s.ByQueue {
		if !slices.Contains(s.Paused, name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	out := make([]queueInfo, len(names))
	for i, name := range names {
		out[i] = queueOf(s, name)
	}
	return out
}

// listQueues handles GET /api/queues: {"queues": [queueInfo…]}.
func (s *server) listQueues(w http.ResponseWriter, r *http.Request) {
	st, err := s.runner.Stats(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string][]queueInfo{"queues": queueList(st)})
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
	st, err := s.runner.Stats(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, queueOf(st, name))
}
