package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

// ambiguousRepo commits the first Finish call and then reports a lost
// connection, as happens when the reply to a COMMIT is lost.
type ambiguousRepo struct {
	jobs.JobRepository
	mu    sync.Mutex
	calls int
}

func (a *ambiguousRepo) Finish(ctx context.Context, cs ...jobs.Completion) error {
	err := a.JobRepository.Finish(ctx, cs...)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.calls++; a.calls == 1 && err == nil {
		return &jobs.Error{Code: jobs.ErrUnavailable, Op: "finish", Msg: "storage unavailable",
			Err: errors.New("unexpected EOF")}
	}
	return err
}

func TestAmbiguousFinishIsConfirmed(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		err    error
		status jobs.Status
	}{
		{"succeeded", nil, jobs.StatusSucceeded},
		{"failed", jobs.Permanent(errors.New("boom")), jobs.StatusFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			repo := &ambiguousRepo{JobRepository: memRepo(t)}
			hooked := make(chan jobs.Status, 2)
			r := newRunner(t, repo, jobs.WithHooks(jobs.Hooks{
				OnSucceeded: func(*jobs.Job) { hooked <- jobs.StatusSucceeded },
				OnFailed:    func(*jobs.Job) { hooked <- jobs.StatusFailed },
			}))
			r.Handle("k", func(context.Context, *jobs.Job, jobs.Reporter) (json.RawMessage, error) {
				return json.RawMessage(`1`), tc.err
			})
			j, err := r.Enqueue(t.Context(), "k", nil)
			require.NoError(t, err)
			start(t, r)
			final := await(t, r, j.ID)
			require.Equal(t, tc.status, final.Status)
			require.Equal(t, 1, final.Attempt)
			// The retry after the lost reply found the lease gone; the
			// runner confirmed that its own first try stored the outcome.
			select {
			case st := <-hooked:
				require.Equal(t, tc.status, st)
			case <-time.After(10 * time.Second):
				t.Fatal("no outcome hook: the stored outcome was taken for a lost lease")
			}
			repo.mu.Lock()
			require.GreaterOrEqual(t, repo.calls, 2)
			repo.mu.Unlock()
		})
	}
}
