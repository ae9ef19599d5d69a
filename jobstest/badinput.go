package jobstest

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/rules"
	"github.com/stretchr/testify/require"
)

var badInputCases = []testCase{
	{"CreateRefused", func(t *testing.T, h *harness) {
		long := strings.Repeat("k", rules.MaxNameLength+1)
		preset := uuid.Must(uuid.NewV7())
		if strconv.IntSize > 32 {
			// Priority and MaxAttempts are 32-bit in every backend. A
			// variable, not a constant, so that this compiles where int
			// has 32 bits (and such values cannot be passed at all).
			wide := int64(math.MaxInt32)
			over, under := int(wide+1), int(-wide-2)
			for name, j := range map[string]*jobs.Job{
				"priority over int32":    {Kind: "k", Priority: over},
				"priority under int32":   {Kind: "k", Priority: under},
				"MaxAttempts over int32": {Kind: "k", MaxAttempts: over},
			} {
				requireCode(t, h.repo.Create(t.Context(), j), jobs.ErrInvalidArgument, name)
			}
		}
		for name, j := range map[string]*jobs.Job{
			"Unicode space payload": {Kind: "k", Payload: json.RawMessage("\u00a0")},
			"vertical tab payload":  {Kind: "k", Payload: json.RawMessage("\v")},
			"invalid JSON":          {Kind: "k", Payload: json.RawMessage(`{"a":`)},
			"two JSON values":       {Kind: "k", Payload: json.RawMessage(`1 2`)},
			"not JSON":              {Kind: "k", Payload: json.RawMessage(`hello`)},
			"empty kind":            {Kind: ""},
			"long kind":             {Kind: long},
			"kind with NUL":         {Kind: "a\x00b"},
			"kind not UTF-8":        {Kind: "a\xffb"},
			"long queue":            {Kind: "k", Queue: long},
			"queue with NUL":        {Kind: "k", Queue: "q\x00"},
			"negative MaxAttempts":  {Kind: "k", MaxAttempts: -1},
			"negative Timeout":      {Kind: "k", Timeout: -time.Second},
			"preset ID":             {Kind: "k", ID: preset},
			"long unique key":       {Kind: "k", UniqueKey: strings.Repeat("u", rules.MaxUniqueKeyLength+1)},
			"unique key with NUL":   {Kind: "k", UniqueKey: "u\x00"},
			"unique key not UTF-8":  {Kind: "k", UniqueKey: "\xc3"},
			"negative MaxAttempts2": {Kind: "k", MaxAttempts: math.MinInt32},
		} {
			requireCode(t, h.repo.Create(t.Context(), j), jobs.ErrInvalidArgument, name)
		}
		require.Zero(t, h.total(t), "nothing is written")
		_, err := h.repo.Get(t.Context(), preset)
		requireCode(t, err, jobs.ErrNotFound)
	}},
	{"RunAtOutOfRange", func(t *testing.T, h *harness) {
		// SQLite keeps times as text and compares them as text, which
		// orders them correctly only with four-digit years: every backend
		// refuses a run-at time outside the years 1 to 9999 (UTC).
		for name, at := range map[string]time.Time{
			"year 10000":             time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
			"year 10000 in UTC only": time.Date(9999, 12, 31, 23, 0, 0, 0, time.FixedZone("UTC-2", -2*3600)),
			"year 0":                 time.Date(0, 12, 31, 0, 0, 0, 0, time.UTC),
			"year -1":                time.Date(-1, 6, 1, 0, 0, 0, 0, time.UTC),
		} {
			requireCode(t, h.repo.Create(t.Context(), &jobs.Job{Kind: "k", RunAt: at}), jobs.ErrInvalidArgument, name)
		}
		require.Zero(t, h.total(t), "nothing is written")

		j := h.running(t)
		err := h.repo.Finish(t.Context(), jobs.Completion{Lease: j.Lease(), Status: jobs.StatusPending,
			RunAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)})
		requireCode(t, err, jobs.ErrInvalidArgument, "retry in year 10000")
		requireSame(t, j, h.get(t, j.ID))
	}},
	{"NameLimits", func(t *testing.T, h *harness) {
		max := strings.Repeat("n", rules.MaxNameLength)
		j := h.create(t, &jobs.Job{Kind: max, Queue: max, UniqueKey: strings.Repeat("u", rules.MaxUniqueKeyLength)})[0]
		got := h.get(t, j.ID)
		require.Equal(t, max, got.Kind)
		require.Equal(t, max, got.Queue)
	}},
	{"PayloadLimit", func(t *testing.T, h *harness) {
		limit := h.cfg.maxPayload
		below := h.create(t, &jobs.Job{Kind: "k", Payload: sized(limit - 1)})[0]
		at := h.create(t, &jobs.Job{Kind: "k", Payload: sized(limit)})[0]
		requireCode(t, h.repo.Create(t.Context(), &jobs.Job{Kind: "k", Payload: sized(limit + 1)}), jobs.ErrTooLarge)
		require.Equal(t, 2, h.total(t))
		require.Equal(t, string(sized(limit-1)), string(h.get(t, below.ID).Payload))
		require.Equal(t, string(sized(limit)), string(h.get(t, at.ID).Payload))
	}},
	{"ResultLimit", func(t *testing.T, h *harness) {
		j := h.running(t)
		big := json.RawMessage(`"` + strings.Repeat("r", h.cfg.maxPayload-1) + `"`)
		err := h.repo.Finish(t.Context(), jobs.Completion{Lease: j.Lease(), Status: jobs.StatusSucceeded, Result: big})
		requireCode(t, err, jobs.ErrTooLarge)
		requireSame(t, j, h.get(t, j.ID))
	}},
	{"InvalidResult", func(t *testing.T, h *harness) {
		j := h.running(t)
		err := h.repo.Finish(t.Context(), jobs.Completion{Lease: j.Lease(), Status: jobs.StatusSucceeded, Result: json.RawMessage(`{`)})
		requireCode(t, err, jobs.ErrInvalidArgument)
		requireSame(t, j, h.get(t, j.ID))
	}},
	{"ProgressRefused", func(t *testing.T, h *harness) {
		j := h.running(t)
		good := jobs.Progress{Fraction: 0.25, Message: "quarter"}
		require.NoError(t, h.repo.UpdateProgress(t.Context(), hour, jobs.ProgressUpdate{Lease: j.Lease(), Progress: good}))
		before := h.get(t, j.ID)
		for name, p := range map[string]jobs.Progress{
			"NaN":          {Fraction: math.NaN()},
			"+Inf":         {Fraction: math.Inf(1)},
			"-Inf":         {Fraction: math.Inf(-1)},
			"negative":     {Fraction: -0.1},
			"over one":     {Fraction: 1.1},
			"long message": {Fraction: 0.5, Message: strings.Repeat("m", rules.MaxMessageLength+1)},
			"not UTF-8":    {Fraction: 0.5, Message: "\xff"},
		} {
			err := h.repo.UpdateProgress(t.Context(), hour, jobs.ProgressUpdate{Lease: j.Lease(), Progress: p})
			requireCode(t, err, jobs.ErrInvalidArgument, name)
			err = h.repo.Finish(t.Context(), jobs.Completion{Lease: j.Lease(), Status: jobs.StatusSucceeded, Progress: &p})
			requireCode(t, err, jobs.ErrInvalidArgument, name)
		}
		requireSame(t, before, h.get(t, j.ID))
		require.Equal(t, good, h.get(t, j.ID).Progress)
	}},
	{"ProgressLimits", func(t *testing.T, h *harness) {
		j := h.running(t)
		for _, p := range []jobs.Progress{
			{Fraction: 0}, {Fraction: 1},
			{Fraction: 0.5, Message: strings.Repeat("é", rules.MaxMessageLength/2)},
		} {
			require.NoError(t, h.repo.UpdateProgress(t.Context(), hour, jobs.ProgressUpdate{Lease: j.Lease(), Progress: p}))
			require.Equal(t, p, h.get(t, j.ID).Progress)
		}
	}},
	{"BatchProgressAllOrNone", func(t *testing.T, h *harness) {
		h.createN(t, "k", 2)
		js := h.claim(t, 2)
		require.Len(t, js, 2)
		err := h.repo.UpdateProgress(t.Context(), hour,
			jobs.ProgressUpdate{Lease: js[0].Lease(), Progress: jobs.Progress{Fraction: 0.5}},
			jobs.ProgressUpdate{Lease: js[1].Lease(), Progress: jobs.Progress{Fraction: 2}})
		requireCode(t, err, jobs.ErrInvalidArgument)
		requireSame(t, js[0], h.get(t, js[0].ID))
		requireSame(t, js[1], h.get(t, js[1].ID))
	}},
	{"OutputRefused", func(t *testing.T, h *harness) {
		// Output without a checkpoint, and a checkpoint or item that is
		// not one JSON value, are refused, and the call writes nothing, not
		// even its valid updates or completions.
		j := h.running(t)
		h.save(t, j, `{"ok":1}`, `"ok"`)
		other := h.running(t)
		before, otherBefore := h.get(t, j.ID), h.get(t, other.ID)
		valid := jobs.ProgressUpdate{Lease: other.Lease(), Checkpoint: json.RawMessage(`2`), Output: raw(`"fine"`)}
		for name, u := range map[string]jobs.ProgressUpdate{
			"output without checkpoint": {Output: raw(`1`)},
			"invalid item":              {Checkpoint: json.RawMessage(`1`), Output: raw(`{"a":`)},
			"blank item":                {Checkpoint: json.RawMessage(`1`), Output: raw(" \n\t")},
			"empty item":                {Checkpoint: json.RawMessage(`1`), Output: []json.RawMessage{{}}},
			"nil item":                  {Checkpoint: json.RawMessage(`1`), Output: []json.RawMessage{nil}},
			"two values item":           {Checkpoint: json.RawMessage(`1`), Output: raw(`"ok"`, `1 2`)},
			"not JSON item":             {Checkpoint: json.RawMessage(`1`), Output: raw(`hello`)},
			"invalid checkpoint":        {Checkpoint: json.RawMessage(`{`), Output: raw(`1`)},
			"blank checkpoint":          {Checkpoint: json.RawMessage(" ")},
			"empty checkpoint":          {Checkpoint: json.RawMessage{}},
		} {
			u.Lease = j.Lease()
			requireCode(t, h.repo.UpdateProgress(t.Context(), hour, u), jobs.ErrInvalidArgument, name)
			requireCode(t, h.repo.UpdateProgress(t.Context(), hour, valid, u), jobs.ErrInvalidArgument, "%s after a valid update", name)
		}
		for name, item := range map[string]json.RawMessage{
			"invalid item": json.RawMessage(`[`), "blank item": json.RawMessage("\r\n"), "nil item": nil,
		} {
			for _, st := range []jobs.Status{jobs.StatusSucceeded, jobs.StatusFailed, jobs.StatusCanceled, jobs.StatusPending} {
				err := h.repo.Finish(t.Context(),
					jobs.Completion{Lease: other.Lease(), Status: jobs.StatusSucceeded, Output: raw(`"fine"`)},
					jobs.Completion{Lease: j.Lease(), Status: st, Output: []json.RawMessage{json.RawMessage(`1`), item}})
				requireCode(t, err, jobs.ErrInvalidArgument, "finish %s with %s", st, name)
			}
		}
		requireSame(t, before, h.get(t, j.ID))
		requireSame(t, otherBefore, h.get(t, other.ID))
		h.requireOutput(t, j.ID, `"ok"`)
		h.requireOutput(t, other.ID)
	}},
	{"OutputSizeLimit", func(t *testing.T, h *harness) {
		// A checkpoint and each item may be as large as a payload.
		limit := h.cfg.maxPayload
		j := h.running(t)
		require.NoError(t, h.repo.UpdateProgress(t.Context(), hour, jobs.ProgressUpdate{
			Lease: j.Lease(), Checkpoint: sized(limit), Output: []json.RawMessage{sized(limit), sized(limit - 1)}}))
		before := h.get(t, j.ID)
		require.Equal(t, string(sized(limit)), string(before.Checkpoint))
		got := h.readAll(t, j.ID)
		require.Len(t, got, 2)
		require.Equal(t, string(sized(limit)), string(got[0].Data))
		require.Equal(t, string(sized(limit-1)), string(got[1].Data))
		for name, u := range map[string]jobs.ProgressUpdate{
			"checkpoint": {Checkpoint: sized(limit + 1)},
			"item":       {Checkpoint: json.RawMessage(`1`), Output: []json.RawMessage{json.RawMessage(`1`), sized(limit + 1)}},
		} {
			u.Lease = j.Lease()
			requireCode(t, h.repo.UpdateProgress(t.Context(), hour, u), jobs.ErrTooLarge, name)
		}
		err := h.repo.Finish(t.Context(), jobs.Completion{Lease: j.Lease(), Status: jobs.StatusSucceeded, Output: []json.RawMessage{sized(limit + 1)}})
		requireCode(t, err, jobs.ErrTooLarge, "finish item")
		requireSame(t, before, h.get(t, j.ID))
		require.Len(t, h.readAll(t, j.ID), 2)
	}},
	{"OutputBatchLimit", func(t *testing.T, h *harness) {
		// One write appends at most MaxOutputBatch items for one job.
		n := rules.MaxOutputBatch
		items := func(n int, from int) []json.RawMessage {
			out := make([]json.RawMessage, n)
			for i := range out {
				out[i] = json.RawMessage(strconv.Itoa(from + i))
			}
			return out
		}
		j := h.running(t)
		requireCode(t, h.repo.UpdateProgress(t.Context(), hour, jobs.ProgressUpdate{
			Lease: j.Lease(), Checkpoint: json.RawMessage(`1`), Output: items(n+1, 1)}), jobs.ErrInvalidArgument)
		requireCode(t, h.repo.Finish(t.Context(), jobs.Completion{
			Lease: j.Lease(), Status: jobs.StatusSucceeded, Output: items(n+1, 1)}), jobs.ErrInvalidArgument)
		requireSame(t, j, h.get(t, j.ID))
		require.NoError(t, h.repo.UpdateProgress(t.Context(), hour, jobs.ProgressUpdate{
			Lease: j.Lease(), Checkpoint: json.RawMessage(`1`), Output: items(n, 1)}))
		require.NoError(t, h.repo.Finish(t.Context(), jobs.Completion{
			Lease: j.Lease(), Status: jobs.StatusSucceeded, Output: items(n, n+1)}))
		got := h.readAll(t, j.ID)
		require.Len(t, got, 2*n)
		for i, it := range got {
			require.Equal(t, int64(i+1), it.Seq)
			require.JSONEq(t, strconv.Itoa(i+1), string(it.Data))
		}
		require.Len(t, h.readOutput(t, j.ID, 0, rules.MaxOutputRead), rules.MaxOutputRead, "a read returns up to its limit")
		require.Equal(t, int64(2*n), h.get(t, j.ID).OutputSeq)
	}},
	{"ReadOutputRefused", func(t *testing.T, h *harness) {
		// A bad range is refused before the job is looked up, so it is
		// ErrInvalidArgument for an unknown ID too.
		j := h.running(t)
		h.save(t, j, `1`, `"a"`)
		for _, id := range []uuid.UUID{j.ID, uuid.Must(uuid.NewV7())} {
			for _, r := range []struct {
				after int64
				limit int
			}{{-1, 1}, {math.MinInt64, 1}, {0, 0}, {0, -1}, {0, rules.MaxOutputRead + 1}, {0, math.MaxInt}} {
				got, err := h.repo.ReadOutput(t.Context(), id, r.after, r.limit)
				requireCode(t, err, jobs.ErrInvalidArgument, "after %d, limit %d", r.after, r.limit)
				require.Empty(t, got)
			}
		}
		for _, id := range []uuid.UUID{uuid.Nil, uuid.Must(uuid.NewV7()), uuid.New()} {
			got, err := h.repo.ReadOutput(t.Context(), id, 0, 10)
			requireCode(t, err, jobs.ErrNotFound)
			require.Empty(t, got)
		}
		requireItems(t, h.readOutput(t, j.ID, 0, 1), 1, `"a"`)
	}},
	{"UnknownID", func(t *testing.T, h *harness) {
		h.create(t, job("k"))
		for _, id := range []uuid.UUID{uuid.Nil, uuid.Must(uuid.NewV7()), uuid.New()} {
			_, err := h.repo.Get(t.Context(), id)
			requireCode(t, err, jobs.ErrNotFound)
			_, err = h.repo.RequestCancel(t.Context(), id)
			requireCode(t, err, jobs.ErrNotFound)
		}
		require.Equal(t, 1, h.total(t))
	}},
	{"ListQueryRefused", func(t *testing.T, h *harness) {
		h.createN(t, "k", 3)
		for name, q := range map[string]jobs.ListQuery{
			"cursor not a UUID":  {Cursor: "abc"},
			"cursor injection":   {Cursor: "' OR 1=1 --"},
			"cursor without -":   {Cursor: strings.ReplaceAll(uuid.NewString(), "-", "")},
			"cursor with braces": {Cursor: "{" + uuid.NewString() + "}"},
			"negative limit":     {Limit: -1},
			"limit too big":      {Limit: rules.MaxListLimit + 1},
			"unknown status":     {Statuses: []jobs.Status{"bogus"}},
			"long kind":          {Kind: strings.Repeat("k", rules.MaxNameLength+1)},
		} {
			_, err := h.repo.List(t.Context(), q)
			requireCode(t, err, jobs.ErrInvalidArgument, name)
		}
	}},
	{"ClaimQueryRefused", func(t *testing.T, h *harness) {
		h.createN(t, "k", 3)
		ok := jobs.ClaimQuery{Owner: "w", Limit: 1, LeaseDuration: time.Minute}
		for name, mod := range map[string]func(q *jobs.ClaimQuery){
			"no owner":         func(q *jobs.ClaimQuery) { q.Owner = "" },
			"limit 0":          func(q *jobs.ClaimQuery) { q.Limit = 0 },
			"negative limit":   func(q *jobs.ClaimQuery) { q.Limit = -1 },
			"limit too big":    func(q *jobs.ClaimQuery) { q.Limit = rules.MaxClaimLimit + 1 },
			"zero lease":       func(q *jobs.ClaimQuery) { q.LeaseDuration = 0 },
			"negative lease":   func(q *jobs.ClaimQuery) { q.LeaseDuration = -time.Second },
			"empty queue name": func(q *jobs.ClaimQuery) { q.Queues = []string{""} },
			"empty kind name":  func(q *jobs.ClaimQuery) { q.Kinds = []string{""} },
		} {
			q := ok
			mod(&q)
			got, err := h.repo.Claim(t.Context(), q)
			requireCode(t, err, jobs.ErrInvalidArgument, name)
			require.Empty(t, got, name)
		}
		require.Equal(t, 3, h.stats(t).ByStatus[jobs.StatusPending], "nothing was claimed")
	}},
	{"LeaseDurationRefused", func(t *testing.T, h *harness) {
		j := h.running(t)
		for _, d := range []time.Duration{0, -time.Second} {
			requireCode(t, h.repo.Heartbeat(t.Context(), d, j.Lease()), jobs.ErrInvalidArgument)
			requireCode(t, h.repo.UpdateProgress(t.Context(), d, jobs.ProgressUpdate{Lease: j.Lease()}), jobs.ErrInvalidArgument)
		}
		requireSame(t, j, h.get(t, j.ID))
	}},
	{"OtherLimitsRefused", func(t *testing.T, h *harness) {
		for _, n := range []int{0, -1, rules.MaxClaimLimit + 1} {
			_, err := h.repo.RescueExpired(t.Context(), n)
			requireCode(t, err, jobs.ErrInvalidArgument, "rescue limit %d", n)
		}
		_, err := h.repo.CancelRequests(t.Context(), "")
		requireCode(t, err, jobs.ErrInvalidArgument, "cancel requests without owner")
	}},
}
