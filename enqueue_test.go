package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/rules"
	"github.com/jobsmith/jobs/jobsbun"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
)

func TestEnqueueAppliesOptions(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		r := newRunner(t, repo)
		r.Handle("k", noop)
		at := time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)
		j, err := r.Enqueue(t.Context(), "k", map[string]int{"n": 1},
			jobs.InQueue("q"), jobs.WithPriority(7), jobs.WithRunAt(at), jobs.WithMaxAttempts(9),
			jobs.WithTimeout(time.Minute), jobs.WithUniqueKey("key-1"))
		require.NoError(t, err)
		require.Equal(t, "q", j.Queue)
		require.Equal(t, 7, j.Priority)
		require.WithinDuration(t, at, j.RunAt, time.Millisecond)
		require.Equal(t, 9, j.MaxAttempts)
		require.Equal(t, time.Minute, j.Timeout)
		require.Equal(t, "key-1", j.UniqueKey)
		require.JSONEq(t, `{"n":1}`, string(j.Payload))
		require.Equal(t, jobs.StatusPending, j.Status)

		again, err := r.Enqueue(t.Context(), "k", nil, jobs.WithUniqueKey("key-1"))
		require.NoError(t, err)
		require.True(t, again.Duplicate)
		require.Equal(t, j.ID, again.ID)

		d, err := r.Enqueue(t.Context(), "k", json.RawMessage(`[1,2]`), jobs.WithRunAt(time.Now().Add(time.Hour)))
		require.NoError(t, err)
		require.JSONEq(t, `[1,2]`, string(d.Payload))
		require.WithinDuration(t, time.Now().Add(time.Hour), d.RunAt, time.Minute)
		b, err := r.Enqueue(t.Context(), "k", []byte(`{"raw":true}`))
		require.NoError(t, err)
		require.JSONEq(t, `{"raw":true}`, string(b.Payload))
	})
}

func TestEnqueueRefusesBadInput(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		r := newRunner(t, repo)
		r.Handle("k", noop)
		ctx := t.Context()
		year10000 := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
		wide := int64(math.MaxInt32) // a variable: int(wide+1) compiles where int has 32 bits
		overInt32 := int(wide + 1)
		tests := []struct {
			name    string
			kind    string
			payload any
			opts    []jobs.EnqueueOption
			want    error
		}{
			{"unknown kind", "other", nil, nil, jobs.ErrUnknownKind},
			{"empty kind", "", nil, nil, jobs.ErrInvalidArgument},
			{"unencodable payload", "k", make(chan int), nil, jobs.ErrInvalidArgument},
			{"raw payload not JSON", "k", json.RawMessage(`{`), nil, jobs.ErrInvalidArgument},
			{"zero max attempts", "k", nil, []jobs.EnqueueOption{jobs.WithMaxAttempts(0)}, jobs.ErrInvalidArgument},
			{"negative timeout", "k", nil, []jobs.EnqueueOption{jobs.WithTimeout(-time.Second)}, jobs.ErrInvalidArgument},
			{"bad queue", "k", nil, []jobs.EnqueueOption{jobs.InQueue("a\x00b")}, jobs.ErrInvalidArgument},
			{"run at year 10000", "k", nil, []jobs.EnqueueOption{jobs.WithRunAt(year10000)}, jobs.ErrInvalidArgument},
			{"priority over int32", "k", nil, []jobs.EnqueueOption{jobs.WithPriority(overInt32)}, jobs.ErrInvalidArgument},
			{"max attempts over int32", "k", nil, []jobs.EnqueueOption{jobs.WithMaxAttempts(overInt32)}, jobs.ErrInvalidArgument},
		}
		for _, tt := range tests {
			_, err := r.Enqueue(ctx, tt.kind, tt.payload, tt.opts...)
			require.ErrorIs(t, err, tt.want, tt.name)
		}
		page, err := r.List(ctx, jobs.ListQuery{})
		require.NoError(t, err)
		require.Empty(t, page.Jobs, "nothing was written")

		open := newRunner(t, repo, jobs.WithAllowUnknownKinds())
		open.Handle("k", noop)
		j, err := open.Enqueue(ctx, "other", nil)
		require.NoError(t, err)
		require.Equal(t, "other", j.Kind)
	})
}

// A process that only enqueues, watches and cancels (an API server, with
// workers elsewhere) needs no handler and no option to enqueue any kind.
func TestProducerOnlyRunnerEnqueuesAnyKind(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		producer := newRunner(t, repo)
		j, err := producer.Enqueue(t.Context(), "transcribe", nil)
		require.NoError(t, err)
		js, err := producer.EnqueueMany(t.Context(), jobs.EnqueueRequest{Kind: "summarise"})
		require.NoError(t, err)
		require.Len(t, js, 1)
		_, err = producer.Cancel(t.Context(), j.ID)
		require.NoError(t, err)
		require.Equal(t, jobs.StatusCanceled, get(t, producer, j.ID).Status)
	})
}

func TestEnqueueManyIsAllOrNothing(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		r := newRunner(t, repo)
		r.Handle("k", noop)
		ctx := t.Context()
		_, err := r.EnqueueMany(ctx,
			jobs.EnqueueRequest{Kind: "k", Payload: 1},
			jobs.EnqueueRequest{Kind: "k", Payload: json.RawMessage(`not json`)})
		require.ErrorIs(t, err, jobs.ErrInvalidArgument)
		page, err := r.List(ctx, jobs.ListQuery{})
		require.NoError(t, err)
		require.Empty(t, page.Jobs)

		js, err := r.EnqueueMany(ctx,
			jobs.EnqueueRequest{Kind: "k", Payload: 1},
			jobs.EnqueueRequest{Kind: "k", Payload: 2, Options: []jobs.EnqueueOption{jobs.WithPriority(3)}})
		require.NoError(t, err)
		require.Len(t, js, 2)
		require.JSONEq(t, "2", string(js[1].Payload))
		require.Equal(t, 3, js[1].Priority)
		none, err := r.EnqueueMany(ctx)
		require.NoError(t, err)
		require.Empty(t, none)

		start(t, r)
		for _, j := range js {
			require.Equal(t, jobs.StatusSucceeded, await(t, r, j.ID).Status)
		}
	})
}

func TestEnqueueTxFollowsTheCallersTransaction(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		// No poll and no refresh within the test: only the commit can
		// start the job.
		r := newRunner(t, repo, jobs.WithPollInterval(time.Hour), jobs.WithRefreshInterval(time.Hour),
			jobs.WithLeaseDuration(2*time.Hour))
		r.Handle("k", noop)
		br, ok := repo.(*jobsbun.Repository)
		if !ok {
			_, err := r.EnqueueTx(t.Context(), nil, "k", nil)
			require.ErrorIs(t, err, jobs.ErrInvalidArgument, "repositories without transactions refuse EnqueueTx")
			return
		}
		start(t, r)
		ctx := t.Context()
		// Once a first job has run, the runner waits for a wake-up or its
		// hour-long poll.
		warm, err := r.Enqueue(ctx, "k", nil)
		require.NoError(t, err)
		await(t, r, warm.ID)
		boom := errors.New("boom")
		var rolledBack *jobs.Job
		err = jobsbun.RunInTx(ctx, br.DB(), func(ctx context.Context, tx bun.Tx) error {
			var err error
			rolledBack, err = r.EnqueueTx(ctx, tx, "k", nil)
			require.NoError(t, err)
			return boom
		})
		require.ErrorIs(t, err, boom)
		_, err = r.Get(ctx, rolledBack.ID)
		require.ErrorIs(t, err, jobs.ErrNotFound, "rollback leaves no job")

		var committed *jobs.Job
		require.NoError(t, jobsbun.RunInTx(ctx, br.DB(), func(ctx context.Context, tx bun.Tx) error {
			var err error
			committed, err = r.EnqueueTx(ctx, tx, "k", map[string]string{"a": "b"}, jobs.WithPriority(2))
			return err
		}))
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		final, err := r.Await(actx, committed.ID)
		require.NoError(t, err, "the commit wakes the local runner at once")
		require.Equal(t, jobs.StatusSucceeded, final.Status)
		require.Equal(t, 2, final.Priority)

		_, err = r.EnqueueTx(ctx, br.DB(), "k", nil)
		require.ErrorIs(t, err, jobs.ErrInvalidArgument, "a *bun.DB is not a transaction")
		page, err := r.List(ctx, jobs.ListQuery{})
		require.NoError(t, err)
		require.Len(t, page.Jobs, 2, "nothing written outside a transaction")
	})
}

func TestConcurrentEnqueuesIsolateBadInput(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		r := newRunner(t, repo)
		r.Handle("k", noop)
		huge := json.RawMessage(`"` + strings.Repeat("x", rules.MaxPayloadBytes) + `"`)
		const callers = 32
		type result struct {
			i   int
			job *jobs.Job
			err error
		}
		results := make(chan result, callers)
		var wg sync.WaitGroup
		for i := range callers {
			wg.Go(func() {
				var payload any = i
				if i%8 == 3 {
					payload = huge
				}
				j, err := r.Enqueue(t.Context(), "k", payload)
				results <- result{i, j, err}
			})
		}
		wg.Wait()
		close(results)
		for res := range results {
			if res.i%8 == 3 {
				require.ErrorIs(t, res.err, jobs.ErrTooLarge)
				continue
			}
			require.NoError(t, res.err, "caller %d", res.i)
			stored := get(t, r, res.job.ID)
			require.JSONEq(t, strconv.Itoa(res.i), string(stored.Payload))
		}
		page, err := r.List(t.Context(), jobs.ListQuery{Limit: rules.MaxListLimit})
		require.NoError(t, err)
		require.Len(t, page.Jobs, callers-callers/8)

		canceled, cancel := context.WithCancel(t.Context())
		cancel()
		_, err = r.Enqueue(canceled, "k", 1)
		require.ErrorIs(t, err, context.Canceled)
		page, err = r.List(t.Context(), jobs.ListQuery{Limit: rules.MaxListLimit})
		require.NoError(t, err)
		require.Len(t, page.Jobs, callers-callers/8, "a canceled Enqueue writes nothing")
	})
}

// TestEnqueueUnderShortDeadlines makes concurrent Enqueue and EnqueueMany
// calls whose deadlines (0 to 4 ms) end before, during or after their
// writes, and checks what a caller relies on: nil means stored, an error is
// a *jobs.Error and means nothing was stored (unless it is
// ErrOutcomeUnknown), and an error caused by the deadline matches it.
func TestEnqueueUnderShortDeadlines(t *testing.T) {
	t.Parallel()
	calls := 2400
	if raceEnabled {
		calls = 1200
	}
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		r := newRunner(t, repo)
		r.Handle("k", noop)
		const callers = 16
		type call struct {
			ids []uuid.UUID
			err error
		}
		results := make([]call, calls)
		var wg sync.WaitGroup
		for c := range callers {
			wg.Go(func() {
				for i := c; i < calls; i += callers {
					ctx, cancel := context.WithTimeout(t.Context(), time.Duration(i%41)*100*time.Microsecond)
					if i%10 == 9 {
						js, err := r.EnqueueMany(ctx, jobs.EnqueueRequest{Kind: "k", Payload: i},
							jobs.EnqueueRequest{Kind: "k", Payload: i})
						results[i].err = err
						for _, j := range js {
							results[i].ids = append(results[i].ids, j.ID)
						}
					} else {
						j, err := r.Enqueue(ctx, "k", i)
						results[i].err = err
						if j != nil {
							results[i].ids = []uuid.UUID{j.ID}
						}
					}
					cancel()
				}
			})
		}
		wg.Wait()

		stored := make(map[uuid.UUID]int) // job ID -> call index
		perCall := make([]int, calls)
		q := jobs.ListQuery{Limit: rules.MaxListLimit}
		for {
			page, err := r.List(t.Context(), q)
			require.NoError(t, err)
			for _, j := range page.Jobs {
				i, err := strconv.Atoi(string(j.Payload))
				require.NoError(t, err)
				stored[j.ID] = i
				perCall[i]++
			}
			if page.Next == "" {
				break
			}
			q.Cursor = page.Next
		}
		var ok, failed, unknown int
		for i, c := range results {
			switch {
			case c.err == nil:
				ok++
				require.NotEmpty(t, c.ids, "call %d", i)
				for _, id := range c.ids {
					got, found := stored[id]
					require.True(t, found, "call %d returned nil but job %s is not stored", i, id)
					require.Equal(t, i, got, "call %d", i)
				}
				require.Equal(t, len(c.ids), perCall[i], "call %d", i)
			case errors.Is(c.err, jobs.ErrOutcomeUnknown):
				unknown++
			default:
				failed++
				_, typed := errors.AsType[*jobs.Error](c.err)
				require.True(t, typed, "call %d: error %q (%T) is not a *jobs.Error", i, c.err, c.err)
				require.ErrorIs(t, c.err, context.DeadlineExceeded, "call %d: code %s", i, jobs.CodeOf(c.err))
				require.Zero(t, perCall[i], "call %d returned %q but its job is stored", i, c.err)
			}
		}
		t.Logf("%d calls: %d stored, %d failed, %d outcome unknown", calls, ok, failed, unknown)
	})
}
