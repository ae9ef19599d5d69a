package transcribe

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/jobsqlite"
	"github.com/stretchr/testify/require"
)

// runJobs starts a runner with the transcription handler on a memory
// repository and stops it when the test ends.
func runJobs(t *testing.T, dir string) *jobs.Runner {
	t.Helper()
	repo := jobs.NewMemoryRepository()
	t.Cleanup(func() { require.NoError(t, repo.Close()) })
	r, stop := startRunner(t, repo, dir, Options{})
	t.Cleanup(func() { require.NoError(t, stop()) })
	return r
}

// startRunner runs a runner with the transcription handler on repo until
// stop is called; stop returns Run's error.
func startRunner(t *testing.T, repo jobs.JobRepository, dir string, opt Options) (r *jobs.Runner, stop func() error) {
	t.Helper()
	r, err := jobs.NewRunner(repo, jobs.WithConcurrency(2), jobs.WithShutdown(time.Nanosecond, 0))
	require.NoError(t, err)
	Register(r, dir, opt)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	return r, func() error {
		cancel()
		return <-done
	}
}

// segments reads job id's whole output.
func segments(t *testing.T, repo jobs.JobRepository, id uuid.UUID) []Segment {
	t.Helper()
	items, err := repo.ReadOutput(t.Context(), id, 0, 1000)
	require.NoError(t, err)
	out := make([]Segment, len(items))
	for i, it := range items {
		require.Equal(t, int64(i+1), it.Seq)
		require.NoError(t, json.Unmarshal(it.Data, &out[i]))
	}
	return out
}

func TestRegisterRunsTranscriptions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "talk.wav"))
	require.NoError(t, err)
	require.NoError(t, EncodeWAV(f, NewTone(2*time.Second, 300)))
	require.NoError(t, f.Close())
	require.NoError(t, os.WriteFile(filepath.Join(dir, "junk.wav"), []byte("RIFF1234WAVEjunk"), 0o600))
	r := runJobs(t, dir)
	ctx := t.Context()

	job, err := r.Enqueue(ctx, Kind, Request{AudioURL: "file:talk.wav", Language: "de"})
	require.NoError(t, err)
	out, final, err := jobs.AwaitResult[Transcript](ctx, r, job.ID)
	require.NoError(t, err)
	require.Equal(t, jobs.StatusSucceeded, final.Status)
	require.Equal(t, 1.0, final.Progress.Fraction)
	require.Equal(t, "segment 4/4", final.Progress.Message)
	require.Equal(t, "de", out.Language)
	require.Equal(t, 2.0, out.Duration)
	require.Equal(t, "speech (1.5 s) silence (0.5 s)", out.Text)
	require.Equal(t, 4, out.Segments)
	require.Equal(t, int64(4), final.OutputSeq, "the segments are the output")
	var texts []string
	for it, err := range r.Output(ctx, job.ID, 0) {
		require.NoError(t, err)
		var s Segment
		require.NoError(t, json.Unmarshal(it.Data, &s))
		texts = append(texts, s.Text)
	}
	require.Equal(t, []string{"speech", "speech", "speech", "silence"}, texts)

	for _, tc := range []struct{ url, want string }{
		{"file:missing.wav", "no such file"},
		{"file:junk.wav", "bad audio"},
		{"http://x/a.wav", "audio_url"},
	} {
		job, err := r.Enqueue(ctx, Kind, Request{AudioURL: tc.url})
		require.NoError(t, err)
		final, err := r.Await(ctx, job.ID)
		require.NoError(t, err)
		require.Equal(t, jobs.StatusFailed, final.Status, tc.url)
		require.Equal(t, 1, final.Attempt, "permanent errors are not retried")
		require.Contains(t, final.Error, tc.want)
	}
}

// A job released at shutdown resumes on the next runner from its last
// checkpoint: the output holds every segment exactly once, in order, and
// the resumed attempt's progress starts at the checkpoint, not at 0.
func TestRegisterResumesFromCheckpoint(t *testing.T) {
	t.Parallel()
	t.Run("memory", func(t *testing.T) {
		t.Parallel()
		repo := jobs.NewMemoryRepository()
		defer repo.Close()
		testResume(t, repo)
	})
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		repo, err := jobsqlite.Open(t.Context(), filepath.Join(t.TempDir(), "jobs.db"))
		require.NoError(t, err)
		defer repo.Close()
		testResume(t, repo)
	})
}

func testResume(t *testing.T, repo jobs.JobRepository) {
	opt := Options{Delay: 5 * time.Millisecond, CheckpointInterval: time.Nanosecond}
	first, stop := startRunner(t, repo, "", opt)
	job, err := first.Enqueue(t.Context(), Kind, Request{AudioURL: "tone:10s"}) // 20 segments
	require.NoError(t, err)
	for it, err := range first.Output(t.Context(), job.ID, 0) {
		require.NoError(t, err)
		if it.Seq == 5 {
			break
		}
	}
	require.NoError(t, stop()) // the handler is canceled and the job released
	released, err := repo.Get(t.Context(), job.ID)
	require.NoError(t, err)
	require.Equal(t, jobs.StatusPending, released.Status)
	var st State
	ok, err := released.LoadCheckpoint(&st)
	require.NoError(t, err)
	require.True(t, ok)
	require.GreaterOrEqual(t, st.Next, 5)
	require.Less(t, st.Next, 20, "stopped mid-way")
	require.Equal(t, int64(st.Next), released.OutputSeq, "the checkpoint covers exactly the stored output")

	var mu sync.Mutex
	var fractions []float64
	second, err := jobs.NewRunner(repo, jobs.WithProgressInterval(time.Millisecond), jobs.WithHooks(jobs.Hooks{
		OnProgress: func(s jobs.Snapshot) {
			mu.Lock()
			fractions = append(fractions, s.Progress)
			mu.Unlock()
		},
	}))
	require.NoError(t, err)
	Register(second, "", opt)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- second.Run(ctx) }()
	final, err := second.Await(t.Context(), job.ID)
	cancel()
	require.NoError(t, <-done)
	require.NoError(t, err)
	require.Equal(t, jobs.StatusSucceeded, final.Status)
	require.Equal(t, 1, final.Attempt, "a release does not count the attempt")

	segs := segments(t, repo, job.ID)
	require.Len(t, segs, 20)
	for i, s := range segs {
		require.InDelta(t, float64(i)*0.5, s.Start, 1e-9, "segment %d in its place, once", i)
	}
	var out Transcript
	require.NoError(t, json.Unmarshal(final.Result, &out))
	require.Equal(t, "speech (1.5 s) silence (0.5 s) speech (1.5 s) silence (0.5 s) speech (1.5 s) silence (0.5 s) speech (1.5 s) silence (0.5 s) speech (1.5 s) silence (0.5 s)", out.Text,
		"the text of the segments before the checkpoint comes from it")
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, fractions)
	for _, f := range fractions {
		require.GreaterOrEqual(t, f, float64(st.Next)/20, "the progress never falls back below the checkpoint")
	}
}

// TestRegisterPassesHandleOptions: the handle options reach jobs.Handle,
// which panics at set-up on an invalid limit.
func TestRegisterPassesHandleOptions(t *testing.T) {
	t.Parallel()
	r, err := jobs.NewRunner(jobs.NewMemoryRepository())
	require.NoError(t, err)
	require.Panics(t, func() { Register(r, "", Options{}, jobs.WithLimit(jobs.Limit{PerKey: -1})) })
}
