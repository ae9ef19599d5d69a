package jobstest

import (
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// adminRaceCases run the batch admin operations while workers claim and
// finish the same jobs.
var adminRaceCases = []testCase{
	{"CancelManyVersusWorkers", func(t *testing.T, h *harness) {
		// Every job CancelMany returns ends canceled, whatever its worker
		// reports (its Finish then says ErrCanceled); every other job ends
		// as its worker finished it; none is both, none neither.
		all := h.createN(t, "k", raceJobs)
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			canceled = map[uuid.UUID]bool{}
			finished = map[uuid.UUID]error{}
		)
		for w := range 4 {
			wg.Go(func() {
				for {
					js, err := h.repo.Claim(t.Context(), jobs.ClaimQuery{Owner: "w" + string(rune('a'+w)), Limit: 3, LeaseDuration: hour})
					if !assert.NoError(t, err) || len(js) == 0 {
						return
					}
					for _, j := range js {
						err := h.repo.Finish(t.Context(), jobs.Completion{Lease: j.Lease(), Status: jobs.StatusSucceeded})
						mu.Lock()
						finished[j.ID] = err
						mu.Unlock()
					}
				}
			})
		}
		wg.Go(func() {
			q := jobs.ListQuery{Limit: 5}
			for {
				got, err := h.repo.CancelMany(t.Context(), q)
				if !assert.NoError(t, err) || len(got) == 0 {
					return
				}
				mu.Lock()
				for _, id := range got {
					assert.False(t, canceled[id], "job %s canceled twice", id)
					canceled[id] = true
				}
				mu.Unlock()
				q.Cursor = got[len(got)-1].String()
			}
		})
		wg.Wait()
		for _, j := range all {
			st := h.get(t, j.ID).Status
			err, ran := finished[j.ID]
			switch {
			case canceled[j.ID] && ran:
				requireCanceledInstead(t, err, j.ID)
				require.Equal(t, jobs.StatusCanceled, st)
			case canceled[j.ID]:
				require.Equal(t, jobs.StatusCanceled, st, "canceled while pending")
			default:
				require.True(t, ran, "job %s neither canceled nor run", j.ID)
				require.NoError(t, err)
				require.Equal(t, jobs.StatusSucceeded, st)
			}
		}
	}},
	{"RetryAndDeleteVersusEachOther", func(t *testing.T, h *harness) {
		// A finished job is either retried or deleted, never both: a
		// retried job is pending, which DeleteMany skips, and a deleted
		// one is gone.
		var js []*jobs.Job
		for range raceJobs {
			js = append(js, h.inStatus(t, jobs.StatusCanceled))
		}
		var retried, deleted []uuid.UUID
		var wg sync.WaitGroup
		wg.Go(func() {
			got, err := h.repo.RetryMany(t.Context(), jobs.ListQuery{Limit: raceJobs})
			assert.NoError(t, err)
			retried = got
		})
		wg.Go(func() {
			got, err := h.repo.DeleteMany(t.Context(), jobs.ListQuery{Limit: raceJobs})
			assert.NoError(t, err)
			deleted = got
		})
		wg.Wait()
		require.Len(t, append(append([]uuid.UUID{}, retried...), deleted...), raceJobs)
		require.ElementsMatch(t, ids(js), append(retried, deleted...), "each job retried or deleted, once")
		for _, id := range retried {
			require.Equal(t, jobs.StatusPending, h.get(t, id).Status)
		}
		require.Equal(t, len(retried), h.total(t))
	}},
}
