package main

import (
	"context"
	"net/http"

	"github.com/jobsmith/jobs"
)

// nightlyStats is the example's schedule: every night at 03:00 UTC, one job
// (whatever the number of server processes) stores the counts of jobs by
// queue and status as its result.
const nightlyStats = "nightly-stats"

// registerNightly declares the nightly schedule and its handler on r.
func registerNightly(r *jobs.Runner) error {
	jobs.Handle(r, nightlyStats, func(ctx context.Context, _ *jobs.Job, _ struct{}, _ jobs.Reporter) (*jobs.Stats, error) {
		return r.Stats(ctx)
	})
	return r.Schedule(nightlyStats, jobs.Schedule{Spec: "0 3 * * *", Kind: nightlyStats})
}

// listSchedules handles GET /api/schedules: {"schedules": [{"name", "spec",
// "kind", "last_tick", "next_tick"}…]}, every schedule stored in the
// database.
func (s *server) listSchedules(w http.ResponseWriter, r *http.Request) {
	list, err := s.runner.Schedules(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string][]jobs.ScheduleInfo{"schedules": list})
}
