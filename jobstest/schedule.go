package jobstest

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jobsmith/jobs"
)

// tick writes schedule "s" with its last tick at and a job of kind "k",
// and returns whether the job was created and the job.
func (h *harness) tick(t *testing.T, at time.Time) (bool, *jobs.Job) {
	t.Helper()
	j := &jobs.Job{Kind: "k", RunAt: at}
	created, err := h.repo.Tick(t.Context(), jobs.ScheduleTick{ScheduleInfo: jobs.ScheduleInfo{Name: "s", Spec: "@every 1m", Kind: "k",
		LastTick: at, NextTick: at.Add(time.Minute)}, Job: j})
	require.NoError(t, err)
	return created[0], j
}

var scheduleCases = []testCase{
	{"SeveralInOneCall", func(t *testing.T, h *harness) {
		at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		tk := func(name string, at time.Time) jobs.ScheduleTick {
			return jobs.ScheduleTick{ScheduleInfo: jobs.ScheduleInfo{Name: name, Spec: "@every 1m", Kind: "k", LastTick: at},
				Job: &jobs.Job{Kind: "k", RunAt: at}}
		}
		created, err := h.repo.Tick(t.Context(), tk("a", at), tk("b", at))
		require.NoError(t, err)
		require.Equal(t, []bool{true, true}, created)
		ticks := []jobs.ScheduleTick{tk("a", at), tk("b", at.Add(time.Minute)), tk("c", at)}
		created, err = h.repo.Tick(t.Context(), ticks...)
		require.NoError(t, err)
		require.Equal(t, []bool{false, true, true}, created, "a's tick was done; b's next and c's first are new")
		require.Empty(t, ticks[0].Job.ID, "a job not created is left unchanged")
		for _, i := range []int{1, 2} {
			requireSame(t, ticks[i].Job, h.get(t, ticks[i].Job.ID))
		}
		require.Equal(t, 4, h.total(t))
	}},
	{"DeclareThenList", func(t *testing.T, h *harness) {
		next := time.Date(2031, 5, 6, 7, 8, 9, 123456789, time.FixedZone("x", 3600))
		created, err := h.repo.Tick(t.Context(),
			jobs.ScheduleTick{ScheduleInfo: jobs.ScheduleInfo{Name: "b", Spec: "*/5 * * * *", Kind: "k", NextTick: next, LastTick: next}},
			jobs.ScheduleTick{ScheduleInfo: jobs.ScheduleInfo{Name: "a", Spec: "@daily", Kind: "k2"}})
		require.NoError(t, err)
		require.Equal(t, []bool{false, false}, created)
		want := jobs.ScheduleInfo{Name: "b", Spec: "*/5 * * * *", Kind: "k", NextTick: next.UTC().Truncate(time.Microsecond)}
		list, err := h.repo.Schedules(t.Context())
		require.NoError(t, err)
		require.Equal(t, []jobs.ScheduleInfo{{Name: "a", Spec: "@daily", Kind: "k2"}, want}, list,
			"sorted by name; no last tick (a nil job ignores it), next tick in UTC to the microsecond")
		require.Equal(t, 0, h.total(t), "declaring creates no job")
	}},
	{"OneJobPerTick", func(t *testing.T, h *harness) {
		at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		created, j := h.tick(t, at)
		require.True(t, created)
		require.Equal(t, jobs.StatusPending, j.Status, "the job is returned as stored")
		requireSame(t, j, h.get(t, j.ID))
		require.True(t, j.RunAt.Equal(at))
		again, j2 := h.tick(t, at)
		require.False(t, again, "the same tick again creates nothing")
		require.Empty(t, j2.ID, "and leaves the job untouched")
		earlier, _ := h.tick(t, at.Add(-time.Minute))
		require.False(t, earlier, "an earlier tick creates nothing")
		later, _ := h.tick(t, at.Add(time.Minute))
		require.True(t, later)
		require.Equal(t, 2, h.total(t))
		list, err := h.repo.Schedules(t.Context())
		require.NoError(t, err)
		require.Len(t, list, 1)
		require.True(t, list[0].LastTick.Equal(at.Add(time.Minute)))
		require.True(t, list[0].NextTick.Equal(at.Add(2*time.Minute)))
	}},
	{"ConcurrentTicksCreateOnce", func(t *testing.T, h *harness) {
		base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		const ticks, writers = 5, 8
		var mu sync.Mutex
		created := map[int]int{}
		for k := range ticks {
			var wg sync.WaitGroup
			for range writers {
				wg.Go(func() {
					j := &jobs.Job{Kind: "k"}
					at := base.Add(time.Duration(k) * time.Minute)
					ok, err := h.repo.Tick(t.Context(), jobs.ScheduleTick{ScheduleInfo: jobs.ScheduleInfo{Name: "s", Spec: "@every 1m", Kind: "k", LastTick: at}, Job: j})
					if err != nil {
						t.Error(err)
						return
					}
					if ok[0] {
						mu.Lock()
						created[k]++
						mu.Unlock()
					}
				})
			}
			wg.Wait()
		}
		for k := range ticks {
			require.Equal(t, 1, created[k], "tick %d: %d writers, one job", k, writers)
		}
		require.Equal(t, ticks, h.total(t))
	}},
	{"InvalidWritesNothing", func(t *testing.T, h *harness) {
		at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		for _, tt := range []struct {
			s   jobs.ScheduleInfo
			job *jobs.Job
		}{
			{jobs.ScheduleInfo{Spec: "@daily", Kind: "k", LastTick: at}, &jobs.Job{Kind: "k"}},
			{jobs.ScheduleInfo{Name: "s", Spec: string(make([]byte, 257)), Kind: "k", LastTick: at}, &jobs.Job{Kind: "k"}},
			{jobs.ScheduleInfo{Name: "s", Spec: "@daily", LastTick: at}, &jobs.Job{Kind: "k"}},
			{jobs.ScheduleInfo{Name: "s", Spec: "@daily", Kind: "k", LastTick: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, &jobs.Job{Kind: "k"}},
			{jobs.ScheduleInfo{Name: "s", Spec: "@daily", Kind: "k", LastTick: at}, &jobs.Job{Kind: ""}},
			{jobs.ScheduleInfo{Name: "s", Spec: "@daily", Kind: "k", LastTick: at}, &jobs.Job{Kind: "k", Payload: []byte("{")}},
		} {
			before := *tt.job
			ok := jobs.ScheduleTick{ScheduleInfo: jobs.ScheduleInfo{Name: "fine", Spec: "@daily", Kind: "k", LastTick: at}, Job: &jobs.Job{Kind: "k"}}
			_, err := h.repo.Tick(t.Context(), ok, jobs.ScheduleTick{ScheduleInfo: tt.s, Job: tt.job})
			requireCode(t, err, jobs.ErrInvalidArgument)
			require.Equal(t, before, *tt.job, "the job is left unchanged")
		}
		same := jobs.ScheduleTick{ScheduleInfo: jobs.ScheduleInfo{Name: "s", Spec: "@daily", Kind: "k", LastTick: at}, Job: &jobs.Job{Kind: "k"}}
		_, err := h.repo.Tick(t.Context(), same, same)
		requireCode(t, err, jobs.ErrInvalidArgument, "one schedule twice in a call")
		list, err := h.repo.Schedules(t.Context())
		require.NoError(t, err)
		require.Empty(t, list, "a call with one bad tick writes none")
		require.Equal(t, 0, h.total(t))
		created, _ := h.tick(t, at)
		require.True(t, created, "the refused tick was not recorded")
	}},
	{"TakenUniqueKeyStillCounts", func(t *testing.T, h *harness) {
		held := h.create(t, &jobs.Job{Kind: "k", UniqueKey: "nightly"})[0]
		at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		j := &jobs.Job{Kind: "k", UniqueKey: "nightly"}
		created, err := h.repo.Tick(t.Context(), jobs.ScheduleTick{ScheduleInfo: jobs.ScheduleInfo{Name: "s", Spec: "@daily", Kind: "k", LastTick: at}, Job: j})
		require.NoError(t, err)
		require.Equal(t, []bool{false}, created)
		require.True(t, j.Duplicate)
		require.Equal(t, held.ID, j.ID, "the job holding the key is returned")
		list, err := h.repo.Schedules(t.Context())
		require.NoError(t, err)
		require.True(t, list[0].LastTick.Equal(at), "the tick is done")
		require.Equal(t, 1, h.total(t))
	}},
}
