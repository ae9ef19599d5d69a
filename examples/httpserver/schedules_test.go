package main

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

// The nightly schedule is listed with its next run once the runner has
// declared it.
func TestSchedulesListsTheNightlyRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{kinds: func(r *jobs.Runner) { require.NoError(t, registerNightly(r)) }})
	var got struct {
		Schedules []jobs.ScheduleInfo `json:"schedules"`
	}
	require.Eventually(t, func() bool {
		res, body := e.do("GET", "/api/schedules", "")
		require.Equal(t, http.StatusOK, res.StatusCode, body)
		require.NoError(t, json.Unmarshal([]byte(body), &got))
		return len(got.Schedules) == 1
	}, 10*time.Second, 20*time.Millisecond)
	s := got.Schedules[0]
	require.Equal(t, nightlyStats, s.Name)
	require.Equal(t, "0 3 * * *", s.Spec)
	now := time.Now().UTC()
	next := time.Date(now.Year(), now.Month(), now.Day(), 3, 0, 0, 0, time.UTC)
	if !next.After(now) {
		next = next.AddDate(0, 0, 1)
	}
	require.True(t, s.NextTick.Equal(next), "next run %v, want %v", s.NextTick, next)
	require.True(t, s.LastTick.IsZero())
}
