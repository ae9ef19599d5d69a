package jobs_test

import (
	"math"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/rules"
	"github.com/stretchr/testify/require"
)

func TestStatusTerminalAndValid(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status          jobs.Status
		valid, terminal bool
	}{
		{jobs.StatusWaiting, true, false},
		{jobs.StatusPending, true, false},
		{jobs.StatusRunning, true, false},
		{jobs.StatusSucceeded, true, true},
		{jobs.StatusFailed, true, true},
		{jobs.StatusCanceled, true, true},
		{"", false, false},
		{"Pending", false, false},
		{"done", false, false},
	} {
		t.Run(string(tc.status), func(t *testing.T) {
			require.Equal(t, tc.valid, tc.status.Valid())
			require.Equal(t, tc.terminal, tc.status.Terminal())
		})
	}
}

func TestProgressValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		p    jobs.Progress
		ok   bool
	}{
		{"zero", jobs.Progress{}, true},
		{"one", jobs.Progress{Fraction: 1}, true},
		{"half with message", jobs.Progress{Fraction: 0.5, Message: "segment 3/10"}, true},
		{"longest message", jobs.Progress{Message: strings.Repeat("m", rules.MaxMessageLength)}, true},
		{"smallest positive", jobs.Progress{Fraction: math.SmallestNonzeroFloat64}, true},
		{"NaN", jobs.Progress{Fraction: math.NaN()}, false},
		{"+Inf", jobs.Progress{Fraction: math.Inf(1)}, false},
		{"-Inf", jobs.Progress{Fraction: math.Inf(-1)}, false},
		{"negative", jobs.Progress{Fraction: -0.1}, false},
		{"negative tiny", jobs.Progress{Fraction: -math.SmallestNonzeroFloat64}, false},
		{"over one", jobs.Progress{Fraction: 1.1}, false},
		{"just over one", jobs.Progress{Fraction: math.Nextafter(1, 2)}, false},
		{"message too long", jobs.Progress{Message: strings.Repeat("m", rules.MaxMessageLength+1)}, false},
		{"message not UTF-8", jobs.Progress{Message: "\xff"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Validate()
			if tc.ok {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, jobs.ErrInvalidArgument)
			require.Equal(t, jobs.ErrInvalidArgument, jobs.CodeOf(err))
		})
	}
}

func TestJobLease(t *testing.T) {
	t.Parallel()
	id := uuid.Must(uuid.NewV7())
	j := &jobs.Job{ID: id, LeaseToken: "tok"}
	require.Equal(t, jobs.Lease{JobID: id, Token: "tok"}, j.Lease())
	require.Equal(t, jobs.Lease{}, (&jobs.Job{}).Lease())
}
