package jobstest

import (
	"fmt"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

// depRaceCases run writers at once against the jobs that other jobs wait
// for: a waiting job must become pending exactly once, and never wait for
// a job that has ended.
var depRaceCases = []testCase{
	{"LastParentsAtOnce", func(t *testing.T, h *harness) {
		// The two dependencies of each job end at the same instant, in two
		// writers: the job becomes pending once, and is claimed once by
		// two claimers racing for it.
		var js []*jobs.Job
		for range raceJobs {
			p1, p2 := job("p"), job("p")
			js = append(js, p1, p2, after("c", p1, p2))
		}
		h.create(t, js...)
		require.Equal(t, raceJobs, h.stats(t).ByStatus[jobs.StatusWaiting])
		ps := h.claimQ(t, jobs.ClaimQuery{Owner: "w", Kinds: []string{"p"}, Limit: 2 * raceJobs, LeaseDuration: hour})
		require.Len(t, ps, 2*raceJobs)
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make([]error, len(ps))
		for i, p := range ps {
			wg.Go(func() {
				<-start
				errs[i] = h.repo.Finish(t.Context(), jobs.Completion{Lease: p.Lease(), Status: jobs.StatusSucceeded})
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
					got, err := h.repo.Claim(t.Context(), jobs.ClaimQuery{Owner: "w", Kinds: []string{"c"}, Limit: 3, LeaseDuration: hour})
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
		for i := 2; i < len(js); i += 3 {
			require.Equal(t, 1, claimed[js[i].ID], "job %d is claimed once", i/3)
		}
		require.Len(t, claimed, raceJobs)
		s := h.stats(t)
		require.Zero(t, s.ByStatus[jobs.StatusWaiting])
		require.Zero(t, s.ByStatus[jobs.StatusPending])
		require.Equal(t, raceJobs, s.ByStatus[jobs.StatusRunning])
	}},
	{"CreateVersusFinish", func(t *testing.T, h *harness) {
		// A job created after a running job while that job ends never
		// waits for it: it starts from the end it saw, or follows it.
		h.createN(t, "p", raceJobs)
		ps := h.claimQ(t, jobs.ClaimQuery{Owner: "w", Kinds: []string{"p"}, Limit: raceJobs, LeaseDuration: hour})
		require.Len(t, ps, raceJobs)
		var wg sync.WaitGroup
		start := make(chan struct{})
		cs := make([]*jobs.Job, len(ps))
		finishErrs := make([]error, len(ps))
		createErrs := make([]error, len(ps))
		for i, p := range ps {
			st := jobs.StatusSucceeded
			if i%2 == 1 {
				st = jobs.StatusFailed
			}
			cs[i] = dependsOn("c", p.ID)
			wg.Go(func() {
				<-start
				finishErrs[i] = h.repo.Finish(t.Context(), jobs.Completion{Lease: p.Lease(), Status: st})
			})
			wg.Go(func() {
				<-start
				createErrs[i] = h.repo.Create(t.Context(), cs[i])
			})
		}
		close(start)
		wg.Wait()
		for i, p := range ps {
			require.NoError(t, finishErrs[i])
			require.NoError(t, createErrs[i])
			got := h.get(t, cs[i].ID)
			if i%2 == 0 {
				require.Equal(t, jobs.StatusPending, got.Status, "job %d", i)
			} else {
				require.Equal(t, jobs.StatusCanceled, got.Status, "job %d", i)
				require.Equal(t, fmt.Sprintf("dependency %s failed", p.ID), got.Error)
			}
		}
		require.Len(t, h.claimKind(t, "c"), raceJobs/2)
	}},
}
