package jobstest

import (
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

// batchRaceCases end the last jobs of batches at once: a batch must end,
// or become pending, exactly once.
var batchRaceCases = []testCase{
	{"LastJobsAtOnce", func(t *testing.T, h *harness) {
		// The two jobs of each batch end at the same instant, in two
		// writers. Round i: a batch without a callback, with a job after
		// it, when i is even (one of its jobs fails when i%4 == 2); a
		// batch with a callback when i is odd. Each batch without a
		// callback ends once, succeeded or failed as its jobs did, and the
		// job after it becomes pending once (or is canceled); each
		// callback is pending once, and claimed once by two claimers.
		type round struct{ p1, p2, batch *jobs.Job }
		rounds := make([]round, raceJobs)
		var js []*jobs.Job
		fails := map[uuid.UUID]bool{}
		for i := range rounds {
			rd := &rounds[i]
			rd.p1, rd.p2 = job("p"), job("p")
			kind := jobs.BatchKind
			if i%2 == 1 {
				kind = "cb"
			}
			rd.batch = batchOf(kind, rd.p1, rd.p2)
			js = append(js, rd.p1, rd.p2, rd.batch)
		}
		h.create(t, js...)
		for i, rd := range rounds {
			if i%4 == 2 {
				fails[rd.p1.ID] = true
			}
		}
		require.Equal(t, raceJobs, h.stats(t).ByStatus[jobs.StatusWaiting])
		ps := h.claimQ(t, jobs.ClaimQuery{Owner: "w", Kinds: []string{"p"}, Limit: 2 * raceJobs, LeaseDuration: hour})
		require.Len(t, ps, 2*raceJobs)
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make([]error, len(ps))
		for i, p := range ps {
			st := jobs.StatusSucceeded
			if fails[p.ID] {
				st = jobs.StatusFailed
			}
			wg.Go(func() {
				<-start
				errs[i] = h.repo.Finish(t.Context(), jobs.Completion{Lease: p.Lease(), Status: st})
			})
		}
		close(start)
		wg.Wait()
		for _, err := range errs {
			require.NoError(t, err)
		}

		var mu sync.Mutex
		claimed := map[uuid.UUID]int{}
		var claimErrs []error
		for range 2 {
			wg.Go(func() {
				for {
					got, err := h.repo.Claim(t.Context(), jobs.ClaimQuery{Owner: "w", Kinds: []string{"cb", jobs.BatchKind}, Limit: 3, LeaseDuration: hour})
					mu.Lock()
					if err != nil {
						claimErrs = append(claimErrs, err)
					}
					for _, c := range got {
						claimed[c.ID]++
					}
					mu.Unlock()
					if err != nil || len(got) == 0 {
						return
					}
				}
			})
		}
		wg.Wait()
		require.Empty(t, claimErrs)
		want := 0
		for i, rd := range rounds {
			b := h.get(t, rd.batch.ID)
			require.InDelta(t, 1, b.Progress.Fraction, fractionDelta, "round %d", i)
			switch i % 4 {
			case 0:
				require.Equal(t, jobs.StatusSucceeded, b.Status, "round %d", i)
			case 2:
				require.Equal(t, jobs.StatusFailed, b.Status, "round %d", i)
				require.Equal(t, batchError(1, 2), b.Error, "round %d", i)
			default:
				require.Equal(t, jobs.StatusRunning, b.Status, "round %d", i)
				require.Equal(t, 1, claimed[rd.batch.ID], "round %d: the callback is claimed once", i)
				want++
			}
		}
		require.Len(t, claimed, want)
		s := h.stats(t)
		require.Zero(t, s.ByStatus[jobs.StatusWaiting])
		require.Zero(t, s.ByStatus[jobs.StatusPending])
	}},
}
