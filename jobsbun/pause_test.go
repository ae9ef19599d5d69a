package jobsbun

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

// TestResumeWakesThisProcess checks that the runners of this process that
// subscribe to the repository hear of a resume (Subscribe delivers on the
// caller's goroutine, so the events are there when ResumeQueue returns),
// and only of a resume that ended a pause.
func TestResumeWakesThisProcess(t *testing.T) {
	t.Parallel()
	r := openTestSQLite(t)
	var got []jobs.Event
	defer r.Subscribe(func(ev jobs.Event) { got = append(got, ev) })()
	ctx := t.Context()
	require.NoError(t, r.ResumeQueue(ctx, "a"))
	require.NoError(t, r.PauseQueue(ctx, "a"))
	require.NoError(t, r.PauseQueue(ctx, "a"))
	require.Empty(t, got, "neither a pause nor the resume of a queue that is not paused is news")
	require.NoError(t, r.ResumeQueue(ctx, "a"))
	require.Equal(t, []jobs.Event{{Ready: true}}, got)
	require.NoError(t, r.ResumeQueue(ctx, "a"))
	require.Len(t, got, 1, "a second resume changes nothing")
}

// TestPauseIsSharedThroughTheDatabase checks that a pause made through one
// repository holds for another on the same database file, as for another
// process, and that a resume there ends it for both.
func TestPauseIsSharedThroughTheDatabase(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "jobs.db")
	a, b := openTestSQLitePath(t, path), openTestSQLitePath(t, path)
	ctx := t.Context()
	require.NoError(t, a.PauseQueue(ctx, "q"))
	j := &jobs.Job{Kind: "k", Queue: "q", Payload: json.RawMessage(`{}`)}
	require.NoError(t, b.Create(ctx, j))
	q := jobs.ClaimQuery{Owner: "w", Limit: 10, LeaseDuration: time.Minute}
	got, err := b.Claim(ctx, q)
	require.NoError(t, err)
	require.Empty(t, got)
	st, err := b.Stats(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"q"}, st.Paused)
	require.NoError(t, b.ResumeQueue(ctx, "q"))
	got, err = a.Claim(ctx, q)
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, j.ID, got[0].ID)
}
