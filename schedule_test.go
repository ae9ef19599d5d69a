package jobs

import (
	"context"
	"encoding/json"
	"maps"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

func TestScheduleRefusesBadInput(t *testing.T) {
	t.Parallel()
	r, err := NewRunner(NewMemoryRepository())
	require.NoError(t, err)
	r.Handle("k", func(context.Context, *Job, Reporter) (json.RawMessage, error) { return nil, nil })
	for _, tt := range []struct {
		name string
		s    Schedule
		code Code
	}{
		{"", Schedule{Spec: "@daily", Kind: "k"}, ErrInvalidArgument},
		{"a", Schedule{Spec: "every day", Kind: "k"}, ErrInvalidArgument},
		{"a", Schedule{Spec: "61 * * * *", Kind: "k"}, ErrInvalidArgument},
		{"a", Schedule{Spec: "@every 1500ms", Kind: "k"}, ErrInvalidArgument},
		{"a", Schedule{Spec: "@every 0s", Kind: "k"}, ErrInvalidArgument},
		{"a", Schedule{Spec: "0 0 30 2 *", Kind: "k"}, ErrInvalidArgument}, // 30 February
		{"a", Schedule{Spec: "@daily", Kind: "other"}, ErrUnknownKind},
		{"a", Schedule{Spec: "@daily", Kind: "k", Payload: make(chan int)}, ErrInvalidArgument},
	} {
		err := r.Schedule(tt.name, tt.s)
		require.Equal(t, tt.code, CodeOf(err), "Schedule(%q, %+v): %v", tt.name, tt.s, err)
	}
	require.NoError(t, r.Schedule("a", Schedule{Spec: "@daily", Kind: "k"}))
	require.Equal(t, ErrConflict, CodeOf(r.Schedule("a", Schedule{Spec: "@hourly", Kind: "k"})), "declared twice")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.NoError(t, r.Run(ctx))
	require.Equal(t, ErrConflict, CodeOf(r.Schedule("b", Schedule{Spec: "@hourly", Kind: "k"})), "after Run")
}

// tickRecorder is a handler that records the RunAt (the tick) of every
// job it runs, by the runner that ran it.
type tickRecorder struct {
	mu    sync.Mutex
	ticks map[time.Time]int
}

func (rec *tickRecorder) handle(_ context.Context, j *Job, _ Reporter) (json.RawMessage, error) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.ticks == nil {
		rec.ticks = map[time.Time]int{}
	}
	rec.ticks[j.RunAt]++
	return nil, nil
}

// seen returns a copy of the ticks run so far.
func (rec *tickRecorder) seen() map[time.Time]int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return maps.Clone(rec.ticks)
}

// scheduledRunner starts a runner on repo with schedule "s" (every 10 s,
// of kind "k" handled by rec) and returns its stop func.
func scheduledRunner(t *testing.T, repo JobRepository, rec *tickRecorder, catchUp bool) func() {
	r, err := NewRunner(repo, WithPollInterval(time.Second))
	require.NoError(t, err)
	r.Handle("k", rec.handle)
	require.NoError(t, r.Schedule("s", Schedule{Spec: "@every 10s", Kind: "k", CatchUp: catchUp}))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	return func() {
		cancel()
		require.NoError(t, <-done)
	}
}

// Three runners declare one schedule and start at different moments: each
// tick runs exactly once, and no tick is left out.
func TestScheduleRunsEachTickOnceAcrossRunners(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		repo := NewMemoryRepository()
		defer repo.Close()
		var rec tickRecorder
		begin := time.Now() // 2000-01-01 00:00:00 UTC: on a tick
		stops := []func(){scheduledRunner(t, repo, &rec, false)}
		time.Sleep(3 * time.Second)
		stops = append(stops, scheduledRunner(t, repo, &rec, false))
		time.Sleep(17 * time.Second)
		stops = append(stops, scheduledRunner(t, repo, &rec, false))
		time.Sleep(40*time.Second + 500*time.Millisecond)
		synctest.Wait()
		for _, stop := range stops {
			stop()
		}
		want := map[time.Time]int{}
		for k := 1; k <= 6; k++ {
			want[begin.Add(time.Duration(k)*10*time.Second).UTC()] = 1
		}
		require.Equal(t, want, rec.seen(), "one job per tick from 00:00:10 to 00:01:00")

		list, err := repo.Schedules(t.Context())
		require.NoError(t, err)
		require.Equal(t, []ScheduleInfo{{Name: "s", Spec: "@every 10s", Kind: "k",
			LastTick: begin.Add(60 * time.Second).UTC(), NextTick: begin.Add(70 * time.Second).UTC()}}, list)
	})
}

// While no runner runs, ticks pass: with CatchUp the next runner enqueues
// one job for the latest of them at once; without, it waits for the next.
func TestScheduleMissedTicks(t *testing.T) {
	t.Parallel()
	for _, catchUp := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			repo := NewMemoryRepository()
			defer repo.Close()
			var rec tickRecorder
			begin := time.Now()
			stop := scheduledRunner(t, repo, &rec, catchUp)
			time.Sleep(15 * time.Second)
			stop() // ran the tick at 10 s
			time.Sleep(42 * time.Second)
			stop = scheduledRunner(t, repo, &rec, catchUp) // at 57 s: 20…50 s were missed
			time.Sleep(time.Second)
			synctest.Wait()
			want := map[time.Time]int{begin.Add(10 * time.Second).UTC(): 1}
			if catchUp {
				want[begin.Add(50*time.Second).UTC()] = 1
			}
			require.Equal(t, want, rec.seen(), "catch up: %v", catchUp)
			time.Sleep(5 * time.Second)
			synctest.Wait()
			stop()
			want[begin.Add(60*time.Second).UTC()] = 1
			require.Equal(t, want, rec.seen(), "then the next tick, catch up: %v", catchUp)
		})
	}
}

// A cron schedule is read in its time zone: 09:00 in New York is 14:00 UTC
// in winter and 13:00 in summer.
func TestScheduleTimeZone(t *testing.T) {
	t.Parallel()
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skipf("no time zone database: %v", err)
	}
	sc := &scheduled{loc: ny}
	sc.when, err = cronParser.Parse("0 9 * * *")
	require.NoError(t, err)
	winter := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	require.Equal(t, time.Date(2026, 12, 7, 14, 0, 0, 0, time.UTC), sc.next(winter))
	require.Equal(t, time.Date(2026, 12, 6, 14, 0, 0, 0, time.UTC), sc.latest(winter))
	summer := time.Date(2026, 7, 7, 12, 0, 0, 0, time.UTC)
	require.Equal(t, time.Date(2026, 7, 7, 13, 0, 0, 0, time.UTC), sc.next(summer))

	every := &scheduled{every: 90 * time.Second, loc: ny}
	at := time.Unix(1_000_000_000, 0)
	require.Equal(t, time.Unix(1_000_000_080, 0).UTC(), every.next(at), "multiples of 90 s since the epoch")
	require.Equal(t, time.Unix(999_999_990, 0).UTC(), every.latest(at))
	require.Equal(t, time.Unix(1_000_000_080, 0).UTC(), every.latest(time.Unix(1_000_000_080, 0)), "a tick is its own latest")
}
