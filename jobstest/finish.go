package jobstest

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/rules"
	"github.com/stretchr/testify/require"
)

var finishCases = []testCase{
	{"Succeeded", func(t *testing.T, h *harness) {
		j := h.running(t)
		require.NoError(t, h.repo.UpdateProgress(t.Context(), hour, jobs.ProgressUpdate{
			Lease: j.Lease(), Progress: jobs.Progress{Fraction: 0.4, Message: "stage 2"}}))
		before := time.Now()
		require.NoError(t, h.repo.Finish(t.Context(), jobs.Completion{
			Lease: j.Lease(), Status: jobs.StatusSucceeded, Result: json.RawMessage(`{"z":1,"a":[true]}`)}))
		after := time.Now()
		got := h.get(t, j.ID)
		require.Equal(t, jobs.StatusSucceeded, got.Status)
		require.JSONEq(t, `{"a":[true],"z":1}`, string(got.Result))
		require.Equal(t, jobs.Progress{Fraction: 1, Message: "stage 2"}, got.Progress, "success completes the progress and keeps the message")
		require.Equal(t, 1, got.Attempt)
		require.Empty(t, got.Error)
		require.Empty(t, got.Errors)
		requireWithin(t, got.FinishedAt, before, after, "FinishedAt")
		requireWithin(t, got.UpdatedAt, before, after, "UpdatedAt")
		require.True(t, got.StartedAt.Equal(j.StartedAt), "StartedAt is kept")
		require.Empty(t, got.LeaseOwner)
		requireUTC(t, got)
	}},
	{"SucceededWithProgressAndNoResult", func(t *testing.T, h *harness) {
		j := h.running(t)
		p := jobs.Progress{Fraction: 0.9, Message: "stopped early"}
		require.NoError(t, h.repo.Finish(t.Context(), jobs.Completion{Lease: j.Lease(), Status: jobs.StatusSucceeded, Progress: &p}))
		got := h.get(t, j.ID)
		require.Equal(t, p, got.Progress, "an explicit final progress is stored as given")
		require.Empty(t, got.Result)
	}},
	{"BlankResultIsNoResult", func(t *testing.T, h *harness) {
		// A result of JSON whitespace only is no result, like an empty one.
		j := h.running(t)
		require.NoError(t, h.repo.Finish(t.Context(), jobs.Completion{
			Lease: j.Lease(), Status: jobs.StatusSucceeded, Result: json.RawMessage(" \n\t ")}))
		got := h.get(t, j.ID)
		require.Equal(t, jobs.StatusSucceeded, got.Status)
		require.Nil(t, got.Result)
	}},
	{"FailedKeepsNoResult", func(t *testing.T, h *harness) {
		j := h.running(t)
		require.NoError(t, h.repo.Finish(t.Context(), jobs.Completion{
			Lease: j.Lease(), Status: jobs.StatusFailed, Result: json.RawMessage(`"ignored"`), Error: "boom"}))
		got := h.get(t, j.ID)
		require.Equal(t, jobs.StatusFailed, got.Status)
		require.Empty(t, got.Result, "Result is stored only with succeeded")
		require.Equal(t, "boom", got.Error)
		require.Len(t, got.Errors, 1)
		require.Equal(t, 1, got.Errors[0].Attempt)
		require.Equal(t, "boom", got.Errors[0].Error)
		require.Zero(t, got.Progress.Fraction, "failure does not complete the progress")
		require.False(t, got.FinishedAt.IsZero())
	}},
	{"RetryKeepsAttemptAndHonoursRunAt", func(t *testing.T, h *harness) {
		j := h.running(t)
		runAt := time.Now().Add(time.Hour).Truncate(time.Second)
		require.NoError(t, h.repo.Finish(t.Context(), jobs.Completion{
			Lease: j.Lease(), Status: jobs.StatusPending, Error: "try again", RunAt: runAt}))
		got := h.get(t, j.ID)
		require.Equal(t, jobs.StatusPending, got.Status)
		require.Equal(t, 1, got.Attempt, "the attempt stays counted")
		require.True(t, runAt.Equal(got.RunAt), "RunAt %v, want %v", got.RunAt, runAt)
		require.True(t, got.FinishedAt.IsZero(), "a retry is not finished")
		require.Empty(t, got.LeaseOwner)
		require.Empty(t, got.LeaseToken)
		require.True(t, got.LeaseExpiresAt.IsZero())
		require.Equal(t, "try again", got.Error)
		require.Empty(t, h.claim(t, 10), "a retry is not claimable before its RunAt")
		requireLost(t, h.repo.Heartbeat(t.Context(), hour, j.Lease()), j.ID)
	}},
	{"RetryAtOnce", func(t *testing.T, h *harness) {
		j := h.running(t)
		before := time.Now()
		require.NoError(t, h.repo.Finish(t.Context(), jobs.Completion{Lease: j.Lease(), Status: jobs.StatusPending}))
		requireWithin(t, h.get(t, j.ID).RunAt, before, time.Now(), "RunAt of an immediate retry")
		again := h.claimOne(t)
		require.Equal(t, j.ID, again.ID)
		require.Equal(t, 2, again.Attempt)
		require.NotEqual(t, j.LeaseToken, again.LeaseToken, "each claim has a fresh token")
	}},
	{"ErrorHistory", func(t *testing.T, h *harness) {
		h.create(t, &jobs.Job{Kind: "k", MaxAttempts: 5})
		for i := 1; i <= 3; i++ {
			c := h.claimOne(t)
			require.Equal(t, i, c.Attempt)
			st := jobs.StatusPending
			if i == 3 {
				st = jobs.StatusSucceeded
			}
			msg := fmt.Sprintf("error %d", i)
			if i == 3 {
				msg = ""
			}
			require.NoError(t, h.repo.Finish(t.Context(), jobs.Completion{Lease: c.Lease(), Status: st, Error: msg}))
		}
		got := h.get(t, h.listAll(t, jobs.ListQuery{})[0].ID)
		require.Equal(t, jobs.StatusSucceeded, got.Status)
		require.Equal(t, "error 2", got.Error, "Error keeps the most recent failure")
		require.Len(t, got.Errors, 2)
		for i, e := range got.Errors {
			require.Equal(t, i+1, e.Attempt)
			require.Equal(t, fmt.Sprintf("error %d", i+1), e.Error)
			require.False(t, e.At.IsZero())
			require.Equal(t, time.UTC, e.At.Location())
		}
		require.False(t, got.Errors[1].At.Before(got.Errors[0].At), "history is oldest first")
	}},
	{"ErrorTruncated", func(t *testing.T, h *harness) {
		j := h.running(t)
		long := "x" + strings.Repeat("é", rules.MaxErrorLength) // cut falls inside a rune
		require.NoError(t, h.repo.Finish(t.Context(), jobs.Completion{Lease: j.Lease(), Status: jobs.StatusFailed, Error: long}))
		got := h.get(t, j.ID)
		for _, s := range []string{got.Error, got.Errors[0].Error} {
			require.LessOrEqual(t, len(s), rules.MaxErrorLength)
			require.GreaterOrEqual(t, len(s), rules.MaxErrorLength-utf8.UTFMax)
			require.True(t, utf8.ValidString(s), "truncation keeps UTF-8 valid")
			require.True(t, strings.HasPrefix(long, s))
		}
	}},
	{"ErrorTextStoredAlike", func(t *testing.T, h *harness) {
		// Every repository stores an attempt's error text by one rule: each
		// run of invalid UTF-8 bytes and each NUL becomes U+FFFD, then the
		// text is cut on a rune boundary to at most MaxErrorLength bytes.
		a := func(n int) string { return strings.Repeat("a", n) }
		cases := []struct{ in, want string }{
			{a(13) + "\xff" + a(5001), a(13) + "\uFFFD" + a(rules.MaxErrorLength-16)}, // an early bad byte keeps the rest
			{"a\x00b", "a\uFFFDb"},
			{"x\xff\xfe\x00y\xc3", "x\uFFFD\uFFFDy\uFFFD"},
			{a(rules.MaxErrorLength-2) + "\x00", a(rules.MaxErrorLength - 2)}, // U+FFFD would not fit
		}
		j := h.create(t, &jobs.Job{Kind: "k", MaxAttempts: len(cases)})[0]
		for i, c := range cases {
			cl := h.claimOne(t)
			st := jobs.StatusPending
			if i == len(cases)-1 {
				st = jobs.StatusFailed
			}
			require.NoError(t, h.repo.Finish(t.Context(), jobs.Completion{Lease: cl.Lease(), Status: st, Error: c.in}))
			got := h.get(t, j.ID)
			require.Equal(t, c.want, got.Error, "Error of attempt %d", i+1)
			require.Len(t, got.Errors, i+1)
			for k, e := range got.Errors {
				require.Equal(t, cases[k].want, e.Error, "Errors[%d] after attempt %d", k, i+1)
			}
		}
	}},
	{"ErrorHistoryCapped", func(t *testing.T, h *harness) {
		n := rules.MaxErrorHistory + 3
		j := h.create(t, &jobs.Job{Kind: "k", MaxAttempts: n + 1})[0]
		for i := 1; i <= n; i++ {
			c := h.claimOne(t)
			require.NoError(t, h.repo.Finish(t.Context(), jobs.Completion{Lease: c.Lease(), Status: jobs.StatusPending, Error: fmt.Sprint(i)}))
		}
		got := h.get(t, j.ID)
		require.Len(t, got.Errors, rules.MaxErrorHistory, "the history keeps the most recent entries")
		require.Equal(t, 4, got.Errors[0].Attempt)
		require.Equal(t, fmt.Sprint(n), got.Errors[len(got.Errors)-1].Error)
		require.Equal(t, n, got.Attempt)
	}},
	{"RetryOfCanceledJobCancels", func(t *testing.T, h *harness) {
		j := h.running(t)
		_, err := h.repo.RequestCancel(t.Context(), j.ID)
		require.NoError(t, err)
		err = h.repo.Finish(t.Context(), jobs.Completion{Lease: j.Lease(), Status: jobs.StatusPending, Error: "interrupted"})
		requireCanceledInstead(t, err, j.ID)
		got := h.get(t, j.ID)
		require.Equal(t, jobs.StatusCanceled, got.Status, "a cancel never ends in a retry")
		require.False(t, got.FinishedAt.IsZero())
		require.Equal(t, "interrupted", got.Error)
		require.Empty(t, h.claim(t, 10))
	}},
	{"CancelRequestWinsOverAnyOutcome", func(t *testing.T, h *harness) {
		// Once RequestCancel returned a running job, the job ends canceled:
		// a success (even a plain one, with no result) or failure finished
		// after the request is stored as canceled, without its result.
		h.createN(t, "k", 4)
		js := h.claim(t, 4)
		require.Len(t, js, 4)
		for _, j := range js[:3] {
			_, err := h.repo.RequestCancel(t.Context(), j.ID)
			require.NoError(t, err)
		}
		err := h.repo.Finish(t.Context(),
			jobs.Completion{Lease: js[0].Lease(), Status: jobs.StatusSucceeded, Result: json.RawMessage(`{"done":true}`)},
			jobs.Completion{Lease: js[1].Lease(), Status: jobs.StatusSucceeded},
			jobs.Completion{Lease: js[2].Lease(), Status: jobs.StatusFailed, Error: "boom"},
			jobs.Completion{Lease: js[3].Lease(), Status: jobs.StatusSucceeded, Result: json.RawMessage(`1`)})
		requireCanceledInstead(t, err, js[0].ID, js[1].ID, js[2].ID)
		for _, j := range js[:3] {
			got := h.get(t, j.ID)
			require.Equal(t, jobs.StatusCanceled, got.Status)
			require.Empty(t, got.Result)
			require.False(t, got.FinishedAt.IsZero())
			require.Empty(t, got.LeaseToken)
		}
		require.Equal(t, "boom", h.get(t, js[2].ID).Error)
		other := h.get(t, js[3].ID)
		require.Equal(t, jobs.StatusSucceeded, other.Status, "the others are written as asked")
		require.JSONEq(t, `1`, string(other.Result))
		require.Empty(t, h.claim(t, 10))
	}},
	{"StaleAndCurrentLeaseOfOneJob", func(t *testing.T, h *harness) {
		// A completion under an old lease and one under the current lease
		// of the same job, in one call and in either order: the current one
		// is written, the stale one reports ErrLeaseLost.
		for _, staleFirst := range []bool{true, false} {
			stale, current := h.reclaimed(t)
			cs := []jobs.Completion{
				{Lease: stale.Lease(), Status: jobs.StatusFailed, Error: "stale"},
				{Lease: current.Lease(), Status: jobs.StatusSucceeded, Result: json.RawMessage(`"fresh"`)},
			}
			if !staleFirst {
				cs[0], cs[1] = cs[1], cs[0]
			}
			requireLost(t, h.repo.Finish(t.Context(), cs...), stale.ID)
			got := h.get(t, current.ID)
			require.Equal(t, jobs.StatusSucceeded, got.Status, "stale first: %v", staleFirst)
			require.JSONEq(t, `"fresh"`, string(got.Result))
		}
	}},
	{"SameLeaseTwice", func(t *testing.T, h *harness) {
		j := h.running(t)
		err := h.repo.Finish(t.Context(),
			jobs.Completion{Lease: j.Lease(), Status: jobs.StatusSucceeded, Result: json.RawMessage(`1`)},
			jobs.Completion{Lease: j.Lease(), Status: jobs.StatusFailed, Error: "second"})
		requireLost(t, err, j.ID)
		got := h.get(t, j.ID)
		require.Equal(t, jobs.StatusSucceeded, got.Status, "the first completion of a lease is applied")
		require.JSONEq(t, `1`, string(got.Result))
	}},
	{"BatchWithLostLease", func(t *testing.T, h *harness) {
		h.createN(t, "k", 3)
		js := h.claim(t, 3)
		require.Len(t, js, 3)
		h.finish(t, js[1], jobs.StatusFailed)
		failed := h.get(t, js[1].ID)
		err := h.repo.Finish(t.Context(),
			jobs.Completion{Lease: js[0].Lease(), Status: jobs.StatusSucceeded},
			jobs.Completion{Lease: js[1].Lease(), Status: jobs.StatusSucceeded},
			jobs.Completion{Lease: js[2].Lease(), Status: jobs.StatusCanceled})
		requireLost(t, err, js[1].ID)
		require.Equal(t, jobs.StatusSucceeded, h.get(t, js[0].ID).Status, "the others are still written")
		require.Equal(t, jobs.StatusCanceled, h.get(t, js[2].ID).Status, "the others are still written")
		requireSame(t, failed, h.get(t, js[1].ID))
	}},
	{"NothingIsNoop", func(t *testing.T, h *harness) {
		require.NoError(t, h.repo.Finish(t.Context()))
		require.NoError(t, h.repo.Heartbeat(t.Context(), hour))
		require.NoError(t, h.repo.UpdateProgress(t.Context(), hour))
		require.NoError(t, h.repo.Release(t.Context()))
	}},
}
