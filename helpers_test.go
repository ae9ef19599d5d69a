package jobs_test

import (
	"context"
	"testing"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

// backend is one repository implementation the runner is tested on.
type backend struct {
	name string
	open func(t *testing.T) jobs.JobRepository
}

func backends() []backend {
	return []backend{
		{"fake", func(t *testing.T) jobs.JobRepository { return jobs.NewFakeRepo() }},
	}
}

// eachBackend runs f as a parallel subtest per backend.
func eachBackend(t *testing.T, f func(t *testing.T, repo jobs.JobRepository)) {
	t.Helper()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			f(t, b.open(t))
		})
	}
}

// newRunner returns a runner over repo with fast test timings.
func newRunner(t *testing.T, repo jobs.JobRepository, opts ...jobs.Option) *jobs.Runner {
	t.Helper()
	base := []jobs.Option{
		jobs.WithPollInterval(20 * time.Millisecond),
		jobs.WithWatchPollInterval(10 * time.Millisecond),
		jobs.WithProgressInterval(20 * time.Millisecond),
		jobs.WithRetryBackoff(time.Millisecond, 10*time.Millisecond),
		jobs.WithGracePeriod(time.Second),
	}
	r, err := jobs.NewRunner(repo, append(base, opts...)...)
	require.NoError(t, err)
	return r
}

// start runs r until the test ends and returns a func that stops it and
// returns Run's error.
func start(t *testing.T, r *jobs.Runner) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	errc := make(chan error, 1)
	go func() { errc <- r.Run(ctx) }()
	var err error
	stopped := false
	stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			err = <-errc
		}
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// await waits for the job to finish, with a deadline.
func await(t *testing.T, r *jobs.Runner, id [16]byte) *jobs.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	j, err := r.Await(ctx, id)
	require.NoError(t, err)
	return j
}
