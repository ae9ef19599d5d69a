package jobstest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

// raceJobs is how many jobs each race case runs; every job is one race.
const raceJobs = 40

// raceCases run two writers against each job at once and check that exactly
// one of them wins and the loser sees a state consistent with the winner.
var raceCases = []testCase{
	{"CancelVersusFinish", func(t *testing.T, h *harness) {
		// A cancel request never fences the worker: its Finish always
		// applies. Either the cancel came first (RequestCancel succeeds and
		// the job ends canceled, which Finish reports with ErrCanceled) or
		// it found the job finished (ErrConflict, and the job succeeded).
		h.createN(t, "k", raceJobs)
		js := h.claim(t, raceJobs)
		require.Len(t, js, raceJobs)
		var wg sync.WaitGroup
		finishErrs := make([]error, len(js))
		cancelErrs := make([]error, len(js))
		for i, j := range js {
			wg.Go(func() {
				finishErrs[i] = h.repo.Finish(t.Context(), jobs.Completion{Lease: j.Lease(), Status: jobs.StatusSucceeded})
			})
			wg.Go(func() { _, cancelErrs[i] = h.repo.RequestCancel(t.Context(), j.ID) })
		}
		wg.Wait()
		for i, j := range js {
			if cancelErrs[i] != nil {
				requireCode(t, cancelErrs[i], jobs.ErrConflict)
				require.NoError(t, finishErrs[i], "job %d", i)
				require.Equal(t, jobs.StatusSucceeded, h.get(t, j.ID).Status, "job %d", i)
				continue
			}
			requireCanceledInstead(t, finishErrs[i], j.ID)
			require.Equal(t, jobs.StatusCanceled, h.get(t, j.ID).Status, "job %d", i)
		}
	}},
	{"RescueVersusFinish", func(t *testing.T, h *harness) {
		// With every lease expired, a rescuer and the workers race: each job
		// ends either finished by its worker (not rescued) or rescued (the
		// worker's Finish is fenced out), never both and never neither.
		js := h.claimExpiring(t, raceJobs, func() *jobs.Job { return job("k") })
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			rescued = map[uuid.UUID]bool{}
			errs    []error
		)
		finishErrs := make([]error, len(js))
		for i, j := range js {
			wg.Go(func() {
				finishErrs[i] = h.repo.Finish(t.Context(), jobs.Completion{Lease: j.Lease(), Status: jobs.StatusSucceeded})
			})
		}
		for range 2 {
			wg.Go(func() {
				for range raceJobs {
					got, err := h.repo.RescueExpired(t.Context(), 3)
					mu.Lock()
					if err != nil {
						errs = append(errs, err)
					}
					for _, r := range got {
						if rescued[r.ID] {
							errs = append(errs, fmt.Errorf("job %s rescued twice", r.ID))
						}
						rescued[r.ID] = true
					}
					mu.Unlock()
					if err != nil {
						return
					}
				}
			})
		}
		wg.Wait()
		require.Empty(t, errs)
		for i, j := range js {
			got := h.get(t, j.ID)
			if rescued[j.ID] {
				requireLost(t, finishErrs[i], j.ID)
				require.Equal(t, jobs.StatusPending, got.Status)
			} else {
				require.NoError(t, finishErrs[i])
				require.Equal(t, jobs.StatusSucceeded, got.Status)
			}
		}
	}},
	{"ClaimVersusCancel", func(t *testing.T, h *harness) {
		// A pending job is either claimed (and the cancel is a request the
		// worker sees) or canceled (and never claimed).
		js := h.createN(t, "k", raceJobs)
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			claimed = map[uuid.UUID]bool{}
			errs    []error
		)
		canceled := make([]*jobs.Job, len(js))
		cancelErrs := make([]error, len(js))
		for i, j := range js {
			wg.Go(func() { canceled[i], cancelErrs[i] = h.repo.RequestCancel(t.Context(), j.ID) })
		}
		for range 2 {
			wg.Go(func() {
				for range raceJobs {
					got, err := h.repo.Claim(t.Context(), jobs.ClaimQuery{Owner: "w", Limit: 3, LeaseDuration: hour})
					mu.Lock()
					if err != nil {
						errs = append(errs, err)
					}
					for _, c := range got {
						claimed[c.ID] = true
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		require.Empty(t, errs)
		reqs, err := h.repo.CancelRequests(t.Context(), "w")
		require.NoError(t, err)
		for i, j := range js {
			require.NoError(t, cancelErrs[i])
			got := h.get(t, j.ID)
			if claimed[j.ID] {
				require.Equal(t, jobs.StatusRunning, got.Status)
				require.True(t, got.CancelRequested)
				require.Contains(t, reqs, j.ID)
			} else {
				require.Equal(t, jobs.StatusCanceled, got.Status)
				require.Equal(t, jobs.StatusCanceled, canceled[i].Status)
			}
		}
	}},
	{"CreateVersusPrune", func(t *testing.T, h *harness) {
		// A Create whose unique key is held by a finished job races the
		// Prune that deletes that job. The key is taken either way: Create
		// returns the old job as a duplicate (it came first) or a new job
		// (the key was free), never an error.
		const rounds, keys = 10, 20
		for round := range rounds {
			key := func(i int) string { return fmt.Sprintf("r%d-k%d", round, i) }
			held := make([]*jobs.Job, keys)
			for i := range held {
				held[i] = &jobs.Job{Kind: "k", UniqueKey: key(i)}
			}
			h.create(t, held...)
			claimed := h.claim(t, keys)
			require.Len(t, claimed, keys)
			done := make([]jobs.Completion, keys)
			for i, j := range claimed {
				done[i] = jobs.Completion{Lease: j.Lease(), Status: jobs.StatusSucceeded}
			}
			require.NoError(t, h.repo.Finish(t.Context(), done...))

			var wg sync.WaitGroup
			start := make(chan struct{})
			created := make([]*jobs.Job, keys)
			errs := make([]error, keys)
			var pruneErr error
			for i := range keys {
				created[i] = &jobs.Job{Kind: "k", UniqueKey: key(i)}
				wg.Go(func() {
					<-start
					errs[i] = h.repo.Create(t.Context(), created[i])
				})
			}
			wg.Go(func() {
				<-start
				_, pruneErr = h.repo.Prune(t.Context(), time.Now().Add(time.Hour))
			})
			close(start)
			wg.Wait()
			require.NoError(t, pruneErr)
			for i, j := range created {
				require.NoError(t, errs[i], "round %d key %d", round, i)
				require.Equal(t, key(i), j.UniqueKey)
				if j.Duplicate {
					require.Equal(t, held[i].ID, j.ID, "a duplicate is the job that held the key")
				} else {
					require.Equal(t, jobs.StatusPending, j.Status)
					require.Equal(t, j.ID, h.get(t, j.ID).ID)
				}
			}
			// Leave nothing claimable for the next round.
			pending := h.claim(t, keys)
			done = done[:0]
			for _, j := range pending {
				done = append(done, jobs.Completion{Lease: j.Lease(), Status: jobs.StatusSucceeded})
			}
			require.NoError(t, h.repo.Finish(t.Context(), done...))
		}
	}},
}

// contextCases check that a call with a finished context fails with the
// context's error, as a [*jobs.Error], and writes nothing, and that a
// context ending during Create never makes it misreport what it stored.
var contextCases = []testCase{
	{"CanceledContext", func(t *testing.T, h *harness) {
		pending := h.create(t, job("k"))[0]
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		requireCtx := func(err error, op string) {
			t.Helper()
			require.Error(t, err, op)
			require.True(t, errors.Is(err, context.Canceled), "%s: %v should match context.Canceled", op, err)
			_, typed := errors.AsType[*jobs.Error](err)
			require.True(t, typed, "%s: error %q (%T) is not a *jobs.Error", op, err, err)
		}
		requireCtx(h.repo.Create(ctx, job("k")), "Create")
		_, err := h.repo.Claim(ctx, jobs.ClaimQuery{Owner: "w", Limit: 10, LeaseDuration: hour})
		requireCtx(err, "Claim")
		_, err = h.repo.RequestCancel(ctx, pending.ID)
		requireCtx(err, "RequestCancel")
		requireSame(t, pending, h.get(t, pending.ID))
		require.Equal(t, 1, h.total(t))
	}},
	{"DeadlineExceeded", func(t *testing.T, h *harness) {
		ctx, cancel := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
		defer cancel()
		_, err := h.repo.Get(ctx, uuid.Must(uuid.NewV7()))
		require.True(t, errors.Is(err, context.DeadlineExceeded), "%v should match context.DeadlineExceeded", err)
	}},
	{"ShortDeadlines", shortDeadlines},
	{"ReadOutputEndedContext", func(t *testing.T, h *harness) {
		// ReadOutput is a read like Get: an ended context fails it with the
		// context's error, whether or not the job exists.
		j := h.running(t)
		h.save(t, j, `1`, `"a"`)
		canceled, cancel := context.WithCancel(t.Context())
		cancel()
		past, cancelPast := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
		defer cancelPast()
		for _, id := range []uuid.UUID{j.ID, uuid.Must(uuid.NewV7())} {
			for ctx, want := range map[context.Context]error{canceled: context.Canceled, past: context.DeadlineExceeded} {
				got, err := h.repo.ReadOutput(ctx, id, 0, 10)
				require.True(t, errors.Is(err, want), "%v should match %v", err, want)
				_, typed := errors.AsType[*jobs.Error](err)
				require.True(t, typed, "error %q (%T) is not a *jobs.Error", err, err)
				require.Empty(t, got)
			}
		}
		h.requireOutput(t, j.ID, `"a"`)
	}},
}
