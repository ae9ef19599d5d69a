package jobstest

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

// keyed returns a job of the given kind, queue and concurrency key.
func keyed(kind, queue, key string) *jobs.Job {
	j := job(kind)
	j.Queue, j.ConcurrencyKey = queue, key
	return j
}

// limitedQ is a claim query of up to n jobs with the given limits.
func limitedQ(n int, kinds, queues map[string]jobs.Limit) jobs.ClaimQuery {
	return jobs.ClaimQuery{Owner: "w", Limit: n, LeaseDuration: hour, KindLimits: kinds, QueueLimits: queues}
}

// countBy counts js by the key f returns.
func countBy(js []*jobs.Job, f func(*jobs.Job) string) map[string]int {
	m := map[string]int{}
	for _, j := range js {
		m[f(j)]++
	}
	return m
}

func byKey(j *jobs.Job) string  { return j.ConcurrencyKey }
func byKind(j *jobs.Job) string { return j.Kind }

var limitCases = []testCase{
	{"ConcurrencyKeyRoundTrips", func(t *testing.T, h *harness) {
		j := h.create(t, keyed("k", "", "user-7"))[0]
		require.Equal(t, "user-7", j.ConcurrencyKey)
		require.Equal(t, "user-7", h.get(t, j.ID).ConcurrencyKey)
		require.Equal(t, "user-7", h.listAll(t, jobs.ListQuery{})[0].ConcurrencyKey)
		c := h.claimOne(t)
		require.Equal(t, "user-7", c.ConcurrencyKey)
		plain := h.create(t, job("k"))[0]
		require.Empty(t, h.get(t, plain.ID).ConcurrencyKey, "no key is the empty key")
		for _, bad := range []string{"a\x00b", strings.Repeat("x", 129), "\xff"} {
			requireCode(t, h.repo.Create(t.Context(), keyed("k", "", bad)), jobs.ErrInvalidArgument, "key %q", bad)
		}
	}},
	{"InvalidLimits", func(t *testing.T, h *harness) {
		h.createN(t, "k", 1)
		for name, l := range map[string]jobs.Limit{
			"negative running":      {Running: -1},
			"negative per key":      {PerKey: -1},
			"negative rate":         {Rate: -1},
			"negative key rate":     {KeyRate: -1},
			"negative period":       {Rate: 1, Period: -time.Second},
			"period without rate":   {Running: 1, Period: time.Second},
			"period under 1ms":      {Rate: 1, Period: time.Microsecond},
			"period over 24h":       {Rate: 1, Period: 25 * time.Hour},
			"running over maxint32": {Running: 1 << 31},
		} {
			_, err := h.repo.Claim(t.Context(), limitedQ(1, map[string]jobs.Limit{"k": l}, nil))
			requireCode(t, err, jobs.ErrInvalidArgument, name)
			_, err = h.repo.Claim(t.Context(), limitedQ(1, nil, map[string]jobs.Limit{"default": l}))
			requireCode(t, err, jobs.ErrInvalidArgument, name)
		}
		_, err := h.repo.Claim(t.Context(), limitedQ(1, map[string]jobs.Limit{"": {Running: 1}}, nil))
		requireCode(t, err, jobs.ErrInvalidArgument, "empty kind name")
		_, err = h.repo.Claim(t.Context(), limitedQ(1, nil, map[string]jobs.Limit{"a\x00": {Running: 1}}))
		requireCode(t, err, jobs.ErrInvalidArgument, "bad queue name")
		require.Equal(t, jobs.StatusPending, h.inStatus(t, jobs.StatusPending).Status, "nothing was claimed")
	}},
	{"KindRunningLimit", func(t *testing.T, h *harness) {
		h.createN(t, "gpu", 6)
		h.createN(t, "cpu", 4)
		lim := map[string]jobs.Limit{"gpu": {Running: 2}}
		got := h.claimQ(t, limitedQ(100, lim, nil))
		require.Equal(t, map[string]int{"gpu": 2, "cpu": 4}, countBy(got, byKind), "the limit bounds its kind only")
		require.Empty(t, h.claimQ(t, limitedQ(100, lim, nil)), "both slots are taken")
		var gpu []*jobs.Job
		for _, j := range got {
			if j.Kind == "gpu" {
				gpu = append(gpu, j)
			}
		}
		h.finish(t, gpu[0], jobs.StatusSucceeded)
		again := h.claimQ(t, limitedQ(100, lim, nil))
		require.Len(t, again, 1, "a finished job frees its slot")
		require.NoError(t, h.repo.Release(t.Context(), again[0].Lease()))
		require.Len(t, h.claimQ(t, limitedQ(100, lim, nil)), 1, "a released job frees its slot")
		require.Len(t, h.claimQ(t, limitedQ(100, nil, nil)), 3, "a claim without limits takes the rest")
	}},
	{"QueueRunningLimit", func(t *testing.T, h *harness) {
		for range 5 {
			h.create(t, keyed("a", "slow", ""), keyed("b", "slow", ""), keyed("a", "fast", ""))
		}
		lim := map[string]jobs.Limit{"slow": {Running: 3}}
		got := h.claimQ(t, limitedQ(100, nil, lim))
		require.Equal(t, map[string]int{"slow": 3, "fast": 5}, countBy(got, func(j *jobs.Job) string { return j.Queue }))
		require.Empty(t, h.claimQ(t, limitedQ(100, nil, lim)))
	}},
	{"KindAndQueueLimitsBothApply", func(t *testing.T, h *harness) {
		for range 5 {
			h.create(t, keyed("a", "q", ""), keyed("b", "q", ""))
		}
		got := h.claimQ(t, limitedQ(100, map[string]jobs.Limit{"a": {Running: 1}}, map[string]jobs.Limit{"q": {Running: 3}}))
		require.Equal(t, map[string]int{"a": 1, "b": 2}, countBy(got, byKind))
	}},
	{"PerKeyLimit", func(t *testing.T, h *harness) {
		for range 4 {
			h.create(t, keyed("k", "", "x"), keyed("k", "", "y"), keyed("k", "", ""))
		}
		lim := map[string]jobs.Limit{"k": {PerKey: 2}}
		got := h.claimQ(t, limitedQ(100, lim, nil))
		require.Equal(t, map[string]int{"x": 2, "y": 2, "": 4}, countBy(got, byKey), "jobs without a key are not limited per key")
		require.Empty(t, h.claimQ(t, limitedQ(100, lim, nil)))
		for _, j := range got {
			if j.ConcurrencyKey == "x" {
				h.finish(t, j, jobs.StatusFailed)
				break
			}
		}
		again := h.claimQ(t, limitedQ(100, lim, nil))
		require.Equal(t, map[string]int{"x": 1}, countBy(again, byKey))
	}},
	{"PerKeyLimitWithinOneClaim", func(t *testing.T, h *harness) {
		for range 10 {
			h.create(t, keyed("k", "", "x"))
		}
		h.create(t, keyed("k", "", "y"))
		got := h.claimQ(t, limitedQ(100, map[string]jobs.Limit{"k": {PerKey: 3, Running: 4}}, nil))
		require.Equal(t, map[string]int{"x": 3, "y": 1}, countBy(got, byKey))
	}},
	{"SkipsWhatDoesNotFit", func(t *testing.T, h *harness) {
		hi := make([]*jobs.Job, 5)
		for i := range hi {
			hi[i] = keyed("a", "", "")
			hi[i].Priority = 10
		}
		h.create(t, hi...)
		h.createN(t, "b", 5)
		got := h.claimQ(t, limitedQ(4, map[string]jobs.Limit{"a": {Running: 1}}, nil))
		require.Equal(t, map[string]int{"a": 1, "b": 3}, countBy(got, byKind), "jobs that do not fit are skipped, not waited for")
	}},
	{"ExpiredLeaseHoldsItsSlotUntilRescued", func(t *testing.T, h *harness) {
		lim := map[string]jobs.Limit{"k": {Running: 1, PerKey: 1}}
		h.create(t, keyed("k", "", "u"), keyed("k", "", "u"))
		q := limitedQ(10, lim, nil)
		q.LeaseDuration = time.Millisecond
		first := h.claimQ(t, q)
		require.Len(t, first, 1)
		waitExpired(t, first...)
		require.Empty(t, h.claimQ(t, limitedQ(10, lim, nil)), "an expired lease still holds its slot")
		rescued, err := h.repo.RescueExpired(t.Context(), 10)
		require.NoError(t, err)
		require.Len(t, rescued, 1)
		require.Len(t, h.claimQ(t, limitedQ(10, lim, nil)), 1, "the rescue freed the slot")
	}},
	{"ConcurrentClaimersNeverOverAdmit", func(t *testing.T, h *harness) {
		const (
			n       = 240
			running = 5
			perKey  = 2
		)
		js := make([]*jobs.Job, n)
		for i := range js {
			js[i] = keyed("k", "", fmt.Sprintf("u%d", i%6))
		}
		h.create(t, js...)
		h.createN(t, "free", 40)
		lim := map[string]jobs.Limit{"k": {Running: running, PerKey: perKey}}
		var (
			mu               sync.Mutex
			held             int
			heldKey          = map[string]int{}
			peak             int
			done             = map[uuid.UUID]bool{}
			errs             []error
			wg               sync.WaitGroup
			claimers, rounds = 8, 0
		)
		for w := range claimers {
			wg.Go(func() {
				owner := fmt.Sprintf("w%d", w)
				for idle := 0; idle < 50; {
					got, err := h.repo.Claim(t.Context(), jobs.ClaimQuery{Owner: owner, Limit: 3, LeaseDuration: hour, KindLimits: lim})
					var mine []*jobs.Job
					mu.Lock()
					rounds++
					if err != nil {
						errs = append(errs, err)
					}
					for _, j := range got {
						if j.Kind != "k" {
							done[j.ID] = true
							continue
						}
						mine = append(mine, j)
						held++
						heldKey[j.ConcurrencyKey]++
						peak = max(peak, held)
						if held > running || heldKey[j.ConcurrencyKey] > perKey {
							errs = append(errs, fmt.Errorf("%d running, %d of key %s", held, heldKey[j.ConcurrencyKey], j.ConcurrencyKey))
						}
					}
					finished := len(done) == n+40
					mu.Unlock()
					if err != nil || finished {
						return
					}
					if len(got) == 0 {
						idle++
						time.Sleep(time.Millisecond)
						continue
					}
					idle = 0
					for _, j := range mine {
						// Counted down before the slot is freed, so the
						// tally never exceeds what the repository holds.
						mu.Lock()
						held--
						heldKey[j.ConcurrencyKey]--
						done[j.ID] = true
						mu.Unlock()
						if err := h.repo.Finish(t.Context(), jobs.Completion{Lease: j.Lease(), Status: jobs.StatusSucceeded}); err != nil {
							mu.Lock()
							errs = append(errs, err)
							mu.Unlock()
						}
					}
				}
			})
		}
		wg.Wait()
		require.Empty(t, errs)
		require.Len(t, done, n+40, "every job ran")
		// The tally counts down before the slot is freed, so it may stay
		// under the limit; reaching near it shows the case tested something.
		require.GreaterOrEqual(t, peak, running-2, "the claimers filled the limit")
		t.Logf("%d claims", rounds)
	}},
	{"RateLimit", func(t *testing.T, h *harness) {
		const period = 400 * time.Millisecond
		h.createN(t, "api", 10)
		lim := map[string]jobs.Limit{"api": {Rate: 3, Period: period}}
		var next time.Time
		q := limitedQ(10, lim, nil)
		q.NextStart = &next
		start := time.Now()
		first := h.claimQ(t, q)
		require.Len(t, first, 3)
		requireWithin(t, next, first[0].StartedAt.Add(period), first[0].StartedAt.Add(period+slack), "NextStart after the rate was used up")
		for _, j := range first {
			h.finish(t, j, jobs.StatusSucceeded)
		}
		got := h.claimQ(t, q)
		if time.Since(start) < period {
			require.Empty(t, got, "finished jobs still count as starts within the period")
			requireWithin(t, next, first[0].StartedAt.Add(period), first[0].StartedAt.Add(period+slack), "NextStart")
		}
		require.Eventually(t, func() bool { return len(h.claimQ(t, q)) == 3 }, 10*time.Second, 10*time.Millisecond)
		require.False(t, time.Now().Before(first[0].StartedAt.Add(period)), "the next starts came after the window")
	}},
	{"KeyRateLimit", func(t *testing.T, h *harness) {
		for range 3 {
			h.create(t, keyed("api", "", "x"), keyed("api", "", "y"), keyed("api", "", ""))
		}
		lim := map[string]jobs.Limit{"api": {KeyRate: 1, Period: time.Hour}}
		got := h.claimQ(t, limitedQ(10, lim, nil))
		require.Equal(t, map[string]int{"x": 1, "y": 1, "": 3}, countBy(got, byKey))
		for _, j := range got {
			h.finish(t, j, jobs.StatusSucceeded)
		}
		var next time.Time
		q := limitedQ(10, lim, nil)
		q.NextStart = &next
		require.Empty(t, h.claimQ(t, q))
		requireWithin(t, next, got[0].StartedAt.Add(time.Hour), got[0].StartedAt.Add(time.Hour+slack), "NextStart")
	}},
}

var fairCases = []testCase{
	{"LoneKeyIsNotStarved", func(t *testing.T, h *harness) {
		n := 2 * h.cfg.stressJobs // 10 000 by default
		for i := 0; i < n; i += 1000 {
			batch := make([]*jobs.Job, min(1000, n-i))
			for k := range batch {
				batch[k] = keyed("k", "", "big")
			}
			h.create(t, batch...)
		}
		lone := h.create(t, keyed("k", "", "lone"))[0]
		got := h.claim(t, 2)
		require.Contains(t, ids(got), lone.ID, "the lone key's job is among the first claimed")
	}},
	{"KeysTakeTurns", func(t *testing.T, h *harness) {
		for _, key := range []string{"a", "b", ""} {
			js := make([]*jobs.Job, 4)
			for i := range js {
				js[i] = keyed("k", "", key)
			}
			h.create(t, js...)
		}
		for round := range 4 {
			var got []*jobs.Job
			for range 3 {
				got = append(got, h.claimOne(t))
			}
			require.Equal(t, map[string]int{"a": 1, "b": 1, "": 1}, countBy(got, byKey), "round %d", round)
		}
	}},
	{"LateKeyJoinsTheTurns", func(t *testing.T, h *harness) {
		a := make([]*jobs.Job, 10)
		for i := range a {
			a[i] = keyed("k", "", "a")
		}
		h.create(t, a...)
		require.Equal(t, map[string]int{"a": 4}, countBy(h.claim(t, 4), byKey))
		b := make([]*jobs.Job, 3)
		for i := range b {
			b[i] = keyed("k", "", "b")
		}
		h.create(t, b...)
		var got []*jobs.Job
		for range 6 {
			got = append(got, h.claimOne(t))
		}
		require.Equal(t, map[string]int{"a": 3, "b": 3}, countBy(got, byKey), "the late key neither waits for the backlog nor jumps it")
	}},
	{"LateKeyJoinsTheTurnsOfJobsWithoutKey", func(t *testing.T, h *harness) {
		// Jobs without a key take their turns as one key: a key that
		// arrives after some of them ran starts at their current turn.
		none := make([]*jobs.Job, 10)
		for i := range none {
			none[i] = keyed("k", "", "")
		}
		h.create(t, none...)
		require.Equal(t, map[string]int{"": 4}, countBy(h.claim(t, 4), byKey))
		b := make([]*jobs.Job, 3)
		for i := range b {
			b[i] = keyed("k", "", "b")
		}
		h.create(t, b...)
		for round := range 3 {
			got := []*jobs.Job{h.claimOne(t), h.claimOne(t)}
			require.Equal(t, map[string]int{"": 1, "b": 1}, countBy(got, byKey), "round %d: the late key neither waits for the backlog nor jumps it", round)
		}
	}},
	{"RetriedJobQueuesBehindItsKey", func(t *testing.T, h *harness) {
		// A job retried by an operator takes a new place in line, after
		// the pending jobs of its key, not the place it had long ago.
		old := h.create(t, keyed("k", "", "a"))[0]
		_, err := h.repo.RequestCancel(t.Context(), old.ID)
		require.NoError(t, err)
		later := h.create(t, keyed("k", "", "a"), keyed("k", "", "a"))
		_, err = h.repo.Retry(t.Context(), old.ID)
		require.NoError(t, err)
		var order []uuid.UUID
		for range 3 {
			order = append(order, h.claimOne(t).ID)
		}
		require.Equal(t, []uuid.UUID{later[0].ID, later[1].ID, old.ID}, order)
	}},
	{"KeyKeepsRunAtOrder", func(t *testing.T, h *harness) {
		base := time.Now().Add(-time.Hour)
		late, early := keyed("k", "", "a"), keyed("k", "", "a")
		late.RunAt, early.RunAt = base, base.Add(-time.Minute)
		h.create(t, late, early)
		require.Equal(t, early.ID, h.claimOne(t).ID)
		require.Equal(t, late.ID, h.claimOne(t).ID)
	}},
	{"DueJobTakesItsTurn", func(t *testing.T, h *harness) {
		runAt := time.Now().Add(300 * time.Millisecond)
		later := keyed("k", "", "b")
		later.RunAt = runAt
		h.create(t, later)
		backlog := make([]*jobs.Job, 20)
		for i := range backlog {
			backlog[i] = keyed("k", "", "a")
		}
		h.create(t, backlog...)
		require.Equal(t, map[string]int{"a": 5}, countBy(h.claim(t, 5), byKey), "the later job waits for its RunAt")
		require.Eventually(t, func() bool { return time.Now().After(runAt.Add(slack)) }, 10*time.Second, time.Millisecond)
		require.Contains(t, ids(h.claim(t, 2)), later.ID, "once due, it is not put behind the backlog")
	}},
	{"FairWithLimits", func(t *testing.T, h *harness) {
		for range 20 {
			h.create(t, keyed("k", "", "big"))
		}
		h.create(t, keyed("k", "", "small"))
		got := h.claimQ(t, limitedQ(2, map[string]jobs.Limit{"k": {PerKey: 5}}, nil))
		require.Equal(t, map[string]int{"big": 1, "small": 1}, countBy(got, byKey))
	}},
}
