package transcribe

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

// runJobs starts a runner with the transcription handler on a memory
// repository and stops it when the test ends.
func runJobs(t *testing.T, dir string) *jobs.Runner {
	t.Helper()
	repo := jobs.NewMemoryRepository()
	r, err := jobs.NewRunner(repo, jobs.WithConcurrency(2))
	require.NoError(t, err)
	Register(r, dir, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
		require.NoError(t, repo.Close())
	})
	return r
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
