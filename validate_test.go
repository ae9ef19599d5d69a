package jobs

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs/internal/rules"
	"github.com/stretchr/testify/require"
)

func TestPrepareNewDefaults(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.FixedZone("X", 3600))
	j := &Job{Kind: "k", Attempt: 7, Status: StatusFailed, Error: "old", LeaseToken: "t", Duplicate: true}
	require.NoError(t, j.Prepare(now, 100))
	require.Equal(t, uuid.Version(7), j.ID.Version())
	require.Equal(t, StatusPending, j.Status)
	require.Equal(t, rules.DefaultQueue, j.Queue)
	require.Equal(t, rules.DefaultMaxAttempts, j.MaxAttempts)
	require.Equal(t, json.RawMessage("null"), j.Payload)
	require.Zero(t, j.Attempt)
	require.Empty(t, j.Error)
	require.Empty(t, j.LeaseToken)
	require.False(t, j.Duplicate)
	want := now.UTC().Truncate(time.Microsecond)
	for _, tm := range []time.Time{j.RunAt, j.CreatedAt, j.UpdatedAt} {
		require.Equal(t, want, tm, "times are UTC microseconds")
		require.Equal(t, time.UTC, tm.Location())
	}
}

func TestPrepareNewKeepsCallerValues(t *testing.T) {
	t.Parallel()
	runAt := time.Date(2030, 1, 1, 0, 0, 0, 999, time.UTC)
	j := &Job{Kind: "k", Queue: "q", MaxAttempts: 9, RunAt: runAt, Priority: -2, Timeout: time.Second, UniqueKey: "u"}
	require.NoError(t, j.Prepare(time.Now(), 100))
	require.Equal(t, "q", j.Queue)
	require.Equal(t, 9, j.MaxAttempts)
	require.Equal(t, -2, j.Priority)
	require.Equal(t, runAt.Truncate(time.Microsecond), j.RunAt)
}

func TestPrepareNewRefuses(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", rules.MaxNameLength+1)
	for _, tc := range []struct {
		name string
		job  *Job
		code Code
	}{
		{"nil", nil, ErrInvalidArgument},
		{"preset ID", &Job{ID: uuid.New(), Kind: "k"}, ErrInvalidArgument},
		{"empty kind", &Job{}, ErrInvalidArgument},
		{"long kind", &Job{Kind: long}, ErrInvalidArgument},
		{"kind NUL", &Job{Kind: "\x00"}, ErrInvalidArgument},
		{"kind not UTF-8", &Job{Kind: "\xff"}, ErrInvalidArgument},
		{"long queue", &Job{Kind: "k", Queue: long}, ErrInvalidArgument},
		{"payload too large", &Job{Kind: "k", Payload: json.RawMessage(`"` + strings.Repeat("p", 99) + `"`)}, ErrTooLarge},
		{"payload invalid", &Job{Kind: "k", Payload: json.RawMessage(`{`)}, ErrInvalidArgument},
		{"max attempts", &Job{Kind: "k", MaxAttempts: -1}, ErrInvalidArgument},
		{"timeout", &Job{Kind: "k", Timeout: -1}, ErrInvalidArgument},
		{"unique key long", &Job{Kind: "k", UniqueKey: strings.Repeat("u", rules.MaxUniqueKeyLength+1)}, ErrInvalidArgument},
		{"unique key NUL", &Job{Kind: "k", UniqueKey: "\x00"}, ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before Job
			if tc.job != nil {
				before = *tc.job
			}
			err := tc.job.Prepare(time.Now(), 100)
			require.Equal(t, tc.code, CodeOf(err), "%v", err)
			if tc.job != nil {
				require.Equal(t, before, *tc.job, "nothing changes on error")
			}
		})
	}
}

func TestCheckClaim(t *testing.T) {
	t.Parallel()
	ok := ClaimQuery{Owner: "w", Limit: 1, LeaseDuration: time.Second}
	require.NoError(t, ok.Validate())
	max := ok
	max.Limit, max.Queues, max.Kinds = rules.MaxClaimLimit, []string{"q"}, []string{"k"}
	require.NoError(t, max.Validate())
	for name, mod := range map[string]func(*ClaimQuery){
		"no owner":      func(q *ClaimQuery) { q.Owner = "" },
		"limit 0":       func(q *ClaimQuery) { q.Limit = 0 },
		"limit too big": func(q *ClaimQuery) { q.Limit = rules.MaxClaimLimit + 1 },
		"lease 0":       func(q *ClaimQuery) { q.LeaseDuration = 0 },
		"empty queue":   func(q *ClaimQuery) { q.Queues = []string{""} },
		"long kind":     func(q *ClaimQuery) { q.Kinds = []string{strings.Repeat("k", rules.MaxNameLength+1)} },
	} {
		q := ok
		mod(&q)
		require.ErrorIs(t, q.Validate(), ErrInvalidArgument, name)
	}
}

func TestCheckList(t *testing.T) {
	t.Parallel()
	limit, after, err := ListQuery{}.Page()
	require.NoError(t, err)
	require.Equal(t, rules.DefaultListLimit, limit)
	require.Equal(t, uuid.Nil, after)
	id := uuid.Must(uuid.NewV7())
	limit, after, err = ListQuery{Limit: 7, Cursor: id.String()}.Page()
	require.NoError(t, err)
	require.Equal(t, 7, limit)
	require.Equal(t, id, after)
	for _, cursor := range []string{"x", "urn:uuid:" + id.String(), strings.ReplaceAll(id.String(), "-", ""), "{" + id.String() + "}"} {
		_, _, err := ListQuery{Cursor: cursor}.Page()
		require.ErrorIs(t, err, ErrInvalidArgument, cursor)
	}
	for _, q := range []ListQuery{{Limit: -1}, {Limit: rules.MaxListLimit + 1}, {Statuses: []Status{"x"}}, {Queue: "\x00"}} {
		_, _, err := q.Page()
		require.ErrorIs(t, err, ErrInvalidArgument)
	}
}

func TestCheckCompletion(t *testing.T) {
	t.Parallel()
	l := Lease{JobID: uuid.New(), Token: "t"}
	for _, st := range []Status{StatusSucceeded, StatusFailed, StatusCanceled, StatusPending} {
		require.NoError(t, Completion{Lease: l, Status: st}.Validate(10))
	}
	bad := Progress{Fraction: 2}
	for name, tc := range map[string]struct {
		c    Completion
		code Code
	}{
		"running":          {Completion{Lease: l, Status: StatusRunning}, ErrInvalidArgument},
		"empty status":     {Completion{Lease: l}, ErrInvalidArgument},
		"result too large": {Completion{Lease: l, Status: StatusSucceeded, Result: json.RawMessage(`"0123456789"`)}, ErrTooLarge},
		"result invalid":   {Completion{Lease: l, Status: StatusSucceeded, Result: json.RawMessage(`{`)}, ErrInvalidArgument},
		"progress invalid": {Completion{Lease: l, Status: StatusSucceeded, Progress: &bad}, ErrInvalidArgument},
	} {
		require.Equal(t, tc.code, CodeOf(tc.c.Validate(10)), name)
	}
	e, ok := Completion{Lease: l, Status: "x"}.Validate(10).(*Error)
	require.True(t, ok)
	require.Equal(t, l.JobID, e.JobID, "the error names the job")
}

func TestCheckRescueLimitAndLease(t *testing.T) {
	t.Parallel()
	require.NoError(t, checkRescueLimit("r", 1))
	require.NoError(t, checkRescueLimit("r", rules.MaxClaimLimit))
	require.ErrorIs(t, checkRescueLimit("r", 0), ErrInvalidArgument)
	require.ErrorIs(t, checkRescueLimit("r", rules.MaxClaimLimit+1), ErrInvalidArgument)
	require.NoError(t, checkLeaseDuration("h", time.Nanosecond))
	require.ErrorIs(t, checkLeaseDuration("h", 0), ErrInvalidArgument)
}

func TestAppendAttemptError(t *testing.T) {
	t.Parallel()
	at := time.Now()
	var h []AttemptError
	for i := 1; i <= rules.MaxErrorHistory+5; i++ {
		h = appendAttemptError(h, i, strings.Repeat("é", rules.MaxErrorLength), at)
	}
	require.Len(t, h, rules.MaxErrorHistory)
	require.Equal(t, 6, h[0].Attempt, "the oldest entries go first")
	require.Equal(t, rules.MaxErrorHistory+5, h[len(h)-1].Attempt)
	require.LessOrEqual(t, len(h[0].Error), rules.MaxErrorLength)
	require.True(t, utf8.ValidString(h[0].Error))
}

func TestTruncateError(t *testing.T) {
	t.Parallel()
	a := func(n int) string { return strings.Repeat("a", n) }
	for _, tc := range []struct{ name, in, want string }{
		{"short", "short", "short"},
		{"exact", a(rules.MaxErrorLength), a(rules.MaxErrorLength)},
		{"long", a(rules.MaxErrorLength + 1), a(rules.MaxErrorLength)},
		{"early invalid byte keeps the rest", a(13) + "\xff" + a(5001), a(13) + "\uFFFD" + a(rules.MaxErrorLength-16)},
		{"run of invalid bytes is one U+FFFD", "x\xff\xfe\x80y", "x\uFFFDy"},
		{"each NUL is U+FFFD", "a\x00\x00b", "a\uFFFD\uFFFDb"},
		{"NUL between invalid bytes", "\xff\x00\xff", "\uFFFD\uFFFD\uFFFD"},
		{"valid U+FFFD is kept", "\uFFFD\xff", "\uFFFD\uFFFD"},
		{"cut before a rune that does not fit", "a" + strings.Repeat("日", rules.MaxErrorLength), "a" + strings.Repeat("日", (rules.MaxErrorLength-1)/3)},
		{"cut before a replacement that does not fit", a(rules.MaxErrorLength-2) + "\xff", a(rules.MaxErrorLength - 2)},
		{"truncated rune at the end", "ab\xe6\x97", "ab\uFFFD"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := rules.ErrorText(tc.in)
			require.Equal(t, tc.want, got)
			require.LessOrEqual(t, len(got), rules.MaxErrorLength)
			require.True(t, utf8.ValidString(got) && !rules.HasNUL(got))
			// The rule is CleanText's, then a cut at a rune boundary.
			clean := rules.CleanText(tc.in)
			require.True(t, strings.HasPrefix(clean, got))
			require.True(t, len(got) == len(clean) || len(got)+utf8.RuneLen([]rune(clean[len(got):])[0]) > rules.MaxErrorLength)
			require.Equal(t, got, rules.ErrorText(got), "stored text is stored unchanged")
		})
	}
}

func TestValidJSON(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]bool{"": true, "  ": true, "null": true, `{"a":1}`: true, "1 2": false, "{": false, "nul": false,
		" \t\r\n": true, "\v": false, "\u00a0": false} {
		require.Equal(t, want, validJSON([]byte(in)), "%q", in)
	}
}
