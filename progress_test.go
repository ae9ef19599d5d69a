package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/rules"
	"github.com/stretchr/testify/require"
)

func TestReportRefusesInvalidValuesAndLateCalls(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		r := newRunner(t, repo)
		results := make(chan map[string]error, 1)
		reporter := make(chan jobs.Reporter, 1)
		r.Handle("k", func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
			if err := p.Report(0.5, "valid"); err != nil {
				return nil, err
			}
			res := map[string]error{}
			for name, v := range map[string]struct {
				f   float64
				msg string
			}{
				"NaN":          {math.NaN(), ""},
				"+Inf":         {math.Inf(1), ""},
				"-Inf":         {math.Inf(-1), ""},
				"negative":     {-0.01, ""},
				"over one":     {1.01, ""},
				"long message": {0.6, strings.Repeat("x", rules.MaxMessageLength+1)},
				"not UTF-8":    {0.6, "\xff"},
			} {
				res[name] = p.Report(v.f, v.msg)
			}
			results <- res
			reporter <- p
			return nil, errors.New("keep the progress as reported")
		})
		start(t, r)
		j, err := r.Enqueue(t.Context(), "k", nil, jobs.WithMaxAttempts(1))
		require.NoError(t, err)
		for name, err := range recv(t, results) {
			require.ErrorIs(t, err, jobs.ErrInvalidArgument, name)
		}
		final := await(t, r, j.ID)
		require.Equal(t, jobs.Progress{Fraction: 0.5, Message: "valid"}, final.Progress, "invalid reports change nothing")
		require.ErrorIs(t, recv(t, reporter).Report(0.9, "late"), jobs.ErrConflict)
		require.Equal(t, final.Progress, get(t, r, j.ID).Progress)
	})
}

func TestReportFromManyGoroutinesStoresTheFinalValue(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		r := newRunner(t, repo)
		r.Handle("k", func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
			var wg sync.WaitGroup
			for g := range 8 {
				wg.Go(func() {
					for i := range 1000 {
						if err := p.Report(float64(i)/1000, "g"); err != nil {
							panic(err)
						}
					}
					_ = g
				})
			}
			wg.Wait()
			if err := p.Report(0.75, "last"); err != nil {
				return nil, err
			}
			return nil, jobs.Permanent(errors.New("stop here"))
		})
		start(t, r)
		j, err := r.Enqueue(t.Context(), "k", nil)
		require.NoError(t, err)
		final := await(t, r, j.ID)
		require.Equal(t, jobs.Progress{Fraction: 0.75, Message: "last"}, final.Progress)
	})
}

func TestProgressWritesAreCoalescedAndRenewTheLease(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		repo := newFaultRepo(memRepo(t))
		const (
			interval = 250 * time.Millisecond
			lease    = 3 * time.Second
			runFor   = 5 * time.Second
		)
		r, err := jobs.NewRunner(repo, jobs.WithProgressInterval(interval), jobs.WithLeaseDuration(lease))
		require.NoError(t, err)
		midRun := make(chan *jobs.Job, 1)
		r.Handle("k", func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
			begin := time.Now()
			for i := 0; time.Since(begin) < runFor; i++ {
				if err := p.Report(min(float64(i)/600000, 1), "working"); err != nil {
					return nil, err
				}
				if i%100 == 0 {
					time.Sleep(time.Millisecond)
				}
				if i == 100*3000 { // about 3 s in
					cur, err := repo.Get(ctx, j.ID)
					if err != nil {
						return nil, err
					}
					midRun <- cur
				}
			}
			return json.RawMessage(`1`), nil
		})
		stop := runInBubble(t, r)
		j, err := r.Enqueue(t.Context(), "k", nil)
		require.NoError(t, err)
		final, err := r.Await(t.Context(), j.ID)
		require.NoError(t, err)
		require.NoError(t, stop())

		cur := <-midRun
		require.Greater(t, cur.Progress.Fraction, 0.0, "progress is written while the job runs")
		require.Equal(t, "working", cur.Progress.Message)
		require.True(t, cur.LeaseExpiresAt.After(cur.StartedAt.Add(lease)), "progress writes renew the lease")
		require.Zero(t, repo.beatsOf(j.ID), "a job whose progress renews its lease needs no heartbeat")
		writes := repo.progressWritesOf(j.ID)
		require.Positive(t, writes)
		require.LessOrEqual(t, writes, int(runFor/interval)+2)
		require.Equal(t, jobs.StatusSucceeded, final.Status)
		require.Equal(t, jobs.Progress{Fraction: 1, Message: "working"}, final.Progress)
	})
}
