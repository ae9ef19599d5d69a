package jobstest

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/rules"
	"github.com/stretchr/testify/require"
)

var createCases = []testCase{
	{"Defaults", func(t *testing.T, h *harness) {
		j := &jobs.Job{Kind: "email"}
		before := time.Now()
		h.create(t, j)
		after := time.Now()
		require.NotEqual(t, uuid.Nil, j.ID)
		require.Equal(t, uuid.Version(7), j.ID.Version(), "IDs are UUIDv7")
		require.Equal(t, jobs.StatusPending, j.Status)
		require.Equal(t, rules.DefaultQueue, j.Queue)
		require.Equal(t, rules.DefaultMaxAttempts, j.MaxAttempts)
		require.Zero(t, j.Attempt)
		require.False(t, j.Duplicate)
		requireWithin(t, j.RunAt, before, after, "RunAt")
		requireWithin(t, j.CreatedAt, before, after, "CreatedAt")
		requireWithin(t, j.UpdatedAt, before, after, "UpdatedAt")
		require.True(t, j.StartedAt.IsZero())
		require.True(t, j.FinishedAt.IsZero())
		require.Empty(t, j.LeaseOwner)
		require.Empty(t, j.LeaseToken)
		requireUTC(t, j)
		got := h.get(t, j.ID)
		requireUTC(t, got)
		requireSame(t, j, got)
	}},
	{"FieldsRoundTrip", func(t *testing.T, h *harness) {
		runAt := time.Now().Add(time.Hour).Truncate(time.Second)
		j := &jobs.Job{
			Kind: "transcribe", Queue: "audio", Priority: -7, MaxAttempts: 9,
			Payload: json.RawMessage(`{"b": [1, 2.5, "x"], "a": {"nested": true}, "c": null}`),
			RunAt:   runAt.In(time.FixedZone("X", 3600)), Timeout: 90 * time.Second, UniqueKey: "key-1",
		}
		h.create(t, j)
		got := h.get(t, j.ID)
		require.Equal(t, "transcribe", got.Kind)
		require.Equal(t, "audio", got.Queue)
		require.Equal(t, -7, got.Priority)
		require.Equal(t, 9, got.MaxAttempts)
		require.Equal(t, 90*time.Second, got.Timeout)
		require.Equal(t, "key-1", got.UniqueKey)
		require.True(t, runAt.Equal(got.RunAt), "RunAt %v, want %v", got.RunAt, runAt)
		require.JSONEq(t, `{"a":{"nested":true},"b":[1,2.5,"x"],"c":null}`, string(got.Payload))
		require.Empty(t, got.Result)
		require.Empty(t, got.Errors)
		requireUTC(t, got)
		requireSame(t, j, got)
	}},
	{"RunAtLastYear", func(t *testing.T, h *harness) {
		// The latest run-at time every backend stores and orders
		// correctly: the job waits, and Get reads it back.
		at := time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)
		j := h.create(t, &jobs.Job{Kind: "k", RunAt: at})[0]
		require.Empty(t, h.claim(t, 1), "a job due in year 9999 is not claimable now")
		got := h.get(t, j.ID)
		require.True(t, at.Equal(got.RunAt), "RunAt %v, want %v", got.RunAt, at)
		requireSame(t, j, got)

		r := h.running(t)
		require.NoError(t, h.repo.Finish(t.Context(), jobs.Completion{Lease: r.Lease(), Status: jobs.StatusPending, RunAt: at}))
		require.True(t, at.Equal(h.get(t, r.ID).RunAt))
		require.Empty(t, h.claim(t, 2), "a retry due in year 9999 is not claimable now")
	}},
	{"EmptyPayloadIsNull", func(t *testing.T, h *harness) {
		j := h.create(t, &jobs.Job{Kind: "k"})[0]
		require.JSONEq(t, `null`, string(h.get(t, j.ID).Payload))
	}},
	{"BlankPayloadIsNull", func(t *testing.T, h *harness) {
		// A payload of JSON whitespace only is no payload, like an empty
		// one: every backend stores null (PostgreSQL's jsonb could not
		// store the whitespace).
		for _, p := range []string{" ", "  \n ", "\t\r\n"} {
			j := h.create(t, &jobs.Job{Kind: "k", Payload: json.RawMessage(p)})[0]
			require.Equal(t, `null`, string(j.Payload), "payload %q as created", p)
			require.Equal(t, `null`, string(h.get(t, j.ID).Payload), "payload %q as stored", p)
		}
	}},
	{"IntegerLimits", func(t *testing.T, h *harness) {
		// Priority and MaxAttempts are 32-bit integers in every backend:
		// the extremes are kept exactly.
		lo := h.create(t, &jobs.Job{Kind: "k", Priority: math.MinInt32, MaxAttempts: 1})[0]
		hi := h.create(t, &jobs.Job{Kind: "k", Priority: math.MaxInt32, MaxAttempts: math.MaxInt32})[0]
		require.Equal(t, math.MinInt32, h.get(t, lo.ID).Priority)
		got := h.get(t, hi.ID)
		require.Equal(t, math.MaxInt32, got.Priority)
		require.Equal(t, math.MaxInt32, got.MaxAttempts)
		require.Equal(t, hi.ID, h.claimOne(t).ID, "the highest priority is claimed first")
	}},
	{"Batch", func(t *testing.T, h *harness) {
		js := h.createN(t, "batch", 10)
		seen := map[uuid.UUID]bool{}
		for i, j := range js {
			require.NotEqual(t, uuid.Nil, j.ID)
			require.False(t, seen[j.ID], "duplicate ID")
			seen[j.ID] = true
			require.JSONEq(t, string(jsonOf(t, j)), string(jsonOf(t, h.get(t, j.ID))), "job %d", i)
		}
		require.Equal(t, 10, h.total(t))
	}},
	{"NothingIsNoop", func(t *testing.T, h *harness) {
		require.NoError(t, h.repo.Create(t.Context()))
		require.Zero(t, h.total(t))
	}},
	{"BatchIsAllOrNone", func(t *testing.T, h *harness) {
		js := jobsOf("batch", 10)
		js[6].Payload = json.RawMessage(`{"broken"`)
		orig := make([]jobs.Job, len(js))
		for i, j := range js {
			orig[i] = *j
		}
		requireCode(t, h.repo.Create(t.Context(), js...), jobs.ErrInvalidArgument)
		require.Zero(t, h.total(t), "no job of a failed batch is written")
		p, err := h.repo.List(t.Context(), jobs.ListQuery{})
		require.NoError(t, err)
		require.Empty(t, p.Jobs)
		for i, j := range js {
			require.Equal(t, uuid.Nil, j.ID, "job %d of a failed batch was changed", i)
			require.Equal(t, orig[i].Status, j.Status, "job %d of a failed batch was changed", i)
		}
		js[6].Payload = json.RawMessage(`{"fixed":true}`)
		h.create(t, js...)
		require.Equal(t, 10, h.total(t), "a fixed batch can be retried")
	}},
	{"BatchWithNilJob", func(t *testing.T, h *harness) {
		requireCode(t, h.repo.Create(t.Context(), job("a"), nil), jobs.ErrInvalidArgument)
		require.Zero(t, h.total(t))
	}},
	{"UniqueKey", func(t *testing.T, h *harness) {
		first := &jobs.Job{Kind: "k", UniqueKey: "once", Payload: json.RawMessage(`1`)}
		h.create(t, first)
		require.False(t, first.Duplicate)
		second := &jobs.Job{Kind: "other", UniqueKey: "once", Payload: json.RawMessage(`2`), Priority: 5}
		h.create(t, second)
		require.True(t, second.Duplicate, "second create with the same key is a duplicate")
		require.Equal(t, first.ID, second.ID)
		require.Equal(t, "k", second.Kind, "the existing job's fields are returned")
		require.JSONEq(t, `1`, string(second.Payload))
		require.Zero(t, second.Priority)
		require.Equal(t, 1, h.total(t))
		require.False(t, h.get(t, first.ID).Duplicate, "Duplicate is never stored")
	}},
	{"UniqueKeyOfRunningJob", func(t *testing.T, h *harness) {
		h.create(t, &jobs.Job{Kind: "k", UniqueKey: "once"})
		running := h.claimOne(t)
		again := h.create(t, &jobs.Job{Kind: "k", UniqueKey: "once"})[0]
		require.True(t, again.Duplicate)
		require.Equal(t, running.ID, again.ID)
		require.Equal(t, jobs.StatusRunning, again.Status)
		require.Equal(t, 1, h.total(t))
	}},
	{"UniqueKeyWithinBatch", func(t *testing.T, h *harness) {
		a := &jobs.Job{Kind: "k", UniqueKey: "same", Payload: json.RawMessage(`"a"`)}
		b := &jobs.Job{Kind: "k", UniqueKey: "other"}
		c := &jobs.Job{Kind: "k", UniqueKey: "same", Payload: json.RawMessage(`"c"`)}
		h.create(t, a, b, c)
		require.False(t, a.Duplicate)
		require.False(t, b.Duplicate)
		require.True(t, c.Duplicate)
		require.Equal(t, a.ID, c.ID)
		require.JSONEq(t, `"a"`, string(c.Payload))
		require.Equal(t, 2, h.total(t))
	}},
	{"UniqueKeyDuplicateInFailedBatch", func(t *testing.T, h *harness) {
		h.create(t, &jobs.Job{Kind: "k", UniqueKey: "u"})
		bad := &jobs.Job{Kind: ""}
		requireCode(t, h.repo.Create(t.Context(), &jobs.Job{Kind: "k", UniqueKey: "u"}, job("new"), bad), jobs.ErrInvalidArgument)
		require.Equal(t, 1, h.total(t))
	}},
	{"VerbatimStrings", verbatimStrings},
	{"InputNotRetained", func(t *testing.T, h *harness) {
		payload := []byte(`{"v":"original"}`)
		j := h.create(t, &jobs.Job{Kind: "k", Payload: payload})[0]
		copy(payload, `{"v":"CHANGED!"}`)
		require.JSONEq(t, `{"v":"original"}`, string(h.get(t, j.ID).Payload))
		got := h.get(t, j.ID)
		got.Payload[6] = 'X'
		got.Kind = "mutated"
		got.Errors = append(got.Errors, jobs.AttemptError{Error: "x"})
		again := h.get(t, j.ID)
		require.JSONEq(t, `{"v":"original"}`, string(again.Payload))
		require.Equal(t, "k", again.Kind)
		require.Empty(t, again.Errors)
	}},
}

// nastyStrings must be stored and returned verbatim wherever a string goes.
var nastyStrings = []string{
	`it's "quoted" and 'single'`,
	`semi;colon`,
	`-- comment`,
	`/* block */ ? $1 :name`,
	`'; DROP TABLE jobs;--`,
	`" OR 1=1 --`,
	"tab\tnewline\ncr\rbell\x07esc\x1b del\x7f",
	"ünïcödé 日本語 🚀 \u200b",
	`back\slash \n literal`,
}

func verbatimStrings(t *testing.T, h *harness) {
	for i, s := range nastyStrings {
		payload, err := json.Marshal(map[string]string{"s": s})
		require.NoError(t, err)
		j := h.create(t, &jobs.Job{Kind: s, Queue: s, UniqueKey: s, Payload: payload})[0]
		claimed := h.claimQ(t, jobs.ClaimQuery{Owner: s, Queues: []string{s}, Kinds: []string{s}, Limit: 10, LeaseDuration: hour})
		require.Len(t, claimed, 1, "string %d", i)
		require.Equal(t, j.ID, claimed[0].ID)
		require.Equal(t, s, claimed[0].LeaseOwner)
		require.NoError(t, h.repo.UpdateProgress(t.Context(), hour, jobs.ProgressUpdate{
			Lease: claimed[0].Lease(), Progress: jobs.Progress{Fraction: 0.5, Message: s},
		}))
		require.NoError(t, h.repo.Finish(t.Context(), jobs.Completion{
			Lease: claimed[0].Lease(), Status: jobs.StatusFailed, Error: s,
		}))
		got := h.get(t, j.ID)
		require.Equal(t, s, got.Kind)
		require.Equal(t, s, got.Queue)
		require.Equal(t, s, got.UniqueKey)
		require.Equal(t, s, got.Progress.Message)
		require.Equal(t, s, got.Error)
		require.Len(t, got.Errors, 1)
		require.Equal(t, s, got.Errors[0].Error)
		var back map[string]string
		require.NoError(t, json.Unmarshal(got.Payload, &back))
		require.Equal(t, s, back["s"])
		for _, q := range []jobs.ListQuery{{Kind: s}, {Queue: s}} {
			p, err := h.repo.List(t.Context(), q)
			require.NoError(t, err)
			require.Equal(t, []uuid.UUID{j.ID}, ids(p.Jobs), "list filter %q", s)
		}
		dup := h.create(t, &jobs.Job{Kind: "other", UniqueKey: s})[0]
		require.True(t, dup.Duplicate)
		require.Equal(t, j.ID, dup.ID)
	}
	st := h.stats(t)
	require.Equal(t, len(nastyStrings), st.Total, "the table is intact")
	for _, s := range nastyStrings {
		require.Equal(t, 1, st.ByKind[s][jobs.StatusFailed], "stats of kind %q", s)
		require.Equal(t, 1, st.ByQueue[s][jobs.StatusFailed], "stats of queue %q", s)
	}
	j := h.create(t, job("after"))[0]
	require.Equal(t, "after", h.get(t, j.ID).Kind)
}
