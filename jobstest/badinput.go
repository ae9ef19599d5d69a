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
		sized := func(n int) json.RawMessage { // a JSON string of exactly n bytes
			if n < 2 {
				return json.RawMessage(strings.Repeat("1", n))
			}
			return json.RawMessage(`"` + strings.Repeat("x", n-2) + `"`)
		}
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
