package transcribe

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/jobsqlite"
	"github.com/stretchr/testify/require"
)

// runSQLite starts a runner with the transcription handlers on a new
// SQLite database (the memory repository has no batches yet) and stops it
// when the test ends.
func runSQLite(t *testing.T) *jobs.Runner {
	t.Helper()
	repo, err := jobsqlite.Open(t.Context(), filepath.Join(t.TempDir(), "jobs.db"))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, repo.Close()) })
	r, stop := startRunner(t, repo, t.TempDir(), Options{})
	t.Cleanup(func() { require.NoError(t, stop()) })
	return r
}

// enqueueChunked creates the chunks of req's audio of duration d and
// their merge, as the HTTP server does, and returns the merge.
func enqueueChunked(t *testing.T, r *jobs.Runner, req Request, reqs []Request) *jobs.Job {
	t.Helper()
	chunks := make([]jobs.EnqueueRequest, len(reqs))
	for i, c := range reqs {
		chunks[i] = jobs.EnqueueRequest{Kind: Kind, Payload: c}
	}
	merge, _, err := r.EnqueueBatch(t.Context(), jobs.EnqueueRequest{Kind: MergeKind, Payload: req}, chunks...)
	require.NoError(t, err)
	return merge
}

// outputOf reads job id's output through the runner.
func outputOf(t *testing.T, r *jobs.Runner, j *jobs.Job) []string {
	t.Helper()
	var out []string
	for it, err := range r.Output(t.Context(), j.ID, 0) {
		require.NoError(t, err)
		out = append(out, string(it.Data))
	}
	return out
}

// The merge of a recording's chunks, listed out of order, gives what one
// transcription of the whole recording gives: result and output.
func TestMergeJoinsChunksInOrder(t *testing.T) {
	t.Parallel()
	r := runSQLite(t)
	ctx := t.Context()
	req := Request{AudioURL: "tone:7s", Language: "en"}
	whole, err := r.Enqueue(ctx, Kind, req)
	require.NoError(t, err)
	want, wholeEnd, err := jobs.AwaitResult[Transcript](ctx, r, whole.ID)
	require.NoError(t, err)
	require.Equal(t, jobs.StatusSucceeded, wholeEnd.Status)

	ws := PlanChunks(7*time.Second, 2*time.Second)
	require.Len(t, ws, 4)
	var reqs []Request
	for _, i := range []int{2, 0, 3, 1} {
		c := req
		c.StartMS, c.LengthMS = ws[i].StartMS, ws[i].LengthMS
		reqs = append(reqs, c)
	}
	merge := enqueueChunked(t, r, req, reqs)
	require.True(t, merge.Batch)
	require.Len(t, merge.DependsOn, 4)
	got, final, err := jobs.AwaitResult[Transcript](ctx, r, merge.ID)
	require.NoError(t, err)
	require.Equal(t, jobs.StatusSucceeded, final.Status, final.Error)
	require.Equal(t, want, got)
	require.Equal(t, outputOf(t, r, wholeEnd), outputOf(t, r, final))
	require.Equal(t, 1.0, final.Progress.Fraction)
	require.Equal(t, "joining 4 chunks", final.Progress.Message)
}

// A chunk that fails fails the merge, whose error names it.
func TestMergeFailsWithAChunk(t *testing.T) {
	t.Parallel()
	r := runSQLite(t)
	ctx := t.Context()
	req := Request{AudioURL: "tone:2s"}
	bad := Request{AudioURL: "file:missing.wav", StartMS: 1000}
	merge := enqueueChunked(t, r, req, []Request{{AudioURL: "tone:2s", LengthMS: 1000}, bad})
	final, err := r.Await(ctx, merge.ID)
	require.NoError(t, err)
	require.Equal(t, jobs.StatusFailed, final.Status)
	require.Equal(t, 1, final.Attempt, "permanent: not retried")
	require.Contains(t, final.Error, "chunk 2 of 2 (job "+merge.DependsOn[1].String()+", from 1.0 s) failed: ")
	require.Contains(t, final.Error, "no such file")
	require.Zero(t, final.OutputSeq, "no partial transcript")

	lone, err := r.Enqueue(ctx, MergeKind, req)
	require.NoError(t, err)
	final, err = r.Await(ctx, lone.ID)
	require.NoError(t, err)
	require.Equal(t, jobs.StatusFailed, final.Status)
	require.Contains(t, final.Error, "a merge needs the chunks it joins")
}
