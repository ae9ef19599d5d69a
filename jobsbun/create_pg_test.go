package jobsbun_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/jobsmith/jobs/internal/testrepo"

	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

// TestPostgresBatchCreateRoundTripsAwkwardValues checks the array-based
// batch insert on values that array literals must quote or escape.
func TestPostgresBatchCreateRoundTripsAwkwardValues(t *testing.T) {
	t.Parallel()
	repo := testrepo.Postgres(t)
	ctx := t.Context()
	texts := []string{`NULL`, `null`, `a,b`, `{x}`, `"q"`, `back\slash`, `sp ace`, `ünï ☃`, `'single'`, `}{`, ``}
	var js []*jobs.Job
	for i, s := range texts {
		payload, err := json.Marshal(map[string]any{"s": s, "n": i, "a": []any{s, nil, 1.5}})
		require.NoError(t, err)
		j := &jobs.Job{Kind: "k" + s, Queue: "q" + s, Payload: payload, Priority: -i,
			MaxAttempts: i + 1, Timeout: time.Duration(i) * time.Second,
			RunAt: time.Date(2030, 1, 2, 3, 4, 5, 123456789, time.UTC)}
		if s != "" {
			j.UniqueKey = "key-" + s
		}
		js = append(js, j)
	}
	js = append(js, &jobs.Job{Kind: "plain", Payload: json.RawMessage(`[]`), UniqueKey: "NULL"})
	require.NoError(t, repo.Create(ctx, js...))
	for _, j := range js {
		got, err := repo.Get(ctx, j.ID)
		require.NoError(t, err)
		require.JSONEq(t, string(j.Payload), string(got.Payload))
		require.Equal(t, j.Kind, got.Kind)
		require.Equal(t, j.Queue, got.Queue)
		require.Equal(t, j.UniqueKey, got.UniqueKey)
		require.Equal(t, j.Priority, got.Priority)
		require.Equal(t, j.MaxAttempts, got.MaxAttempts)
		require.Equal(t, j.Timeout, got.Timeout)
		require.True(t, j.RunAt.Equal(got.RunAt), "run_at %v, stored %v", j.RunAt, got.RunAt)
		require.True(t, j.CreatedAt.Equal(got.CreatedAt))
	}
	// The keys are taken: a second batch with one of them gets a duplicate.
	again := &jobs.Job{Kind: "x", Payload: json.RawMessage(`{}`), UniqueKey: "key-a,b"}
	fresh := &jobs.Job{Kind: "x", Payload: json.RawMessage(`{}`), UniqueKey: "key-new"}
	require.NoError(t, repo.Create(ctx, again, fresh))
	require.True(t, again.Duplicate)
	require.Equal(t, js[2].ID, again.ID)
	require.False(t, fresh.Duplicate)
}
