package jobstest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/rules"
	"github.com/stretchr/testify/require"
)

// shortDeadlines calls Create from several goroutines with deadlines of 0
// to 4 ms, so that many deadlines end while a write is under way, and
// checks the rule callers rely on: a nil error means every job of the call
// is stored; an error is a [*jobs.Error] and means none is, unless it is
// [jobs.ErrOutcomeUnknown]; any other error matches the deadline. The calls
// mix the write paths: one job, two jobs, one job with a unique key.
func shortDeadlines(t *testing.T, h *harness) {
	const workers = 8
	type call struct {
		js  []*jobs.Job
		err error
	}
	calls := make([]call, shortDeadlineCalls)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(calls); i += workers {
				js := []*jobs.Job{{Kind: "k", Payload: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))}}
				switch i % 3 {
				case 1:
					js = append(js, &jobs.Job{Kind: "k", Payload: json.RawMessage(fmt.Sprintf(`{"i":%d,"second":true}`, i))})
				case 2:
					js[0].UniqueKey = fmt.Sprintf("key-%d", i)
				}
				ctx, cancel := context.WithTimeout(t.Context(), time.Duration(i%41)*100*time.Microsecond)
				err := h.repo.Create(ctx, js...)
				cancel()
				calls[i] = call{js, err}
			}
		})
	}
	wg.Wait()

	stored := make([]int, len(calls)) // jobs stored per call
	for _, j := range h.listAll(t, jobs.ListQuery{Limit: rules.MaxListLimit}) {
		var p struct{ I int }
		require.NoError(t, json.Unmarshal(j.Payload, &p))
		stored[p.I]++
	}
	var ok, failed, unknown int
	for i, c := range calls {
		switch {
		case c.err == nil:
			ok++
			require.Equal(t, len(c.js), stored[i], "call %d returned nil: all its jobs are stored", i)
			for _, j := range c.js {
				require.False(t, j.Duplicate, "call %d", i)
				got := h.get(t, j.ID)
				require.JSONEq(t, string(j.Payload), string(got.Payload), "call %d", i)
			}
		case errors.Is(c.err, jobs.ErrOutcomeUnknown):
			unknown++
			require.Contains(t, []int{0, len(c.js)}, stored[i], "call %d: all or nothing", i)
		default:
			failed++
			_, typed := errors.AsType[*jobs.Error](c.err)
			require.True(t, typed, "call %d: error %q (%T) is not a *jobs.Error", i, c.err, c.err)
			require.ErrorIs(t, c.err, context.DeadlineExceeded, "call %d: code %s", i, jobs.CodeOf(c.err))
			require.Zero(t, stored[i], "call %d returned %q but stored its jobs", i, c.err)
			for _, j := range c.js {
				require.Equal(t, uuid.Nil, j.ID, "call %d: a failed Create leaves its jobs unchanged", i)
			}
		}
	}
	t.Logf("%d calls: %d stored, %d failed, %d outcome unknown", len(calls), ok, failed, unknown)
}
