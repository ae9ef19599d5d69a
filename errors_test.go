package jobs_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jobsmith/jobs"
)

func TestErrorIsMatchesSentinelByCode(t *testing.T) {
	t.Parallel()
	sentinels := []*jobs.Error{
		jobs.ErrNotFound, jobs.ErrInvalidArgument, jobs.ErrTooLarge, jobs.ErrConflict,
		jobs.ErrUnknownKind, jobs.ErrCanceled, jobs.ErrTimeout, jobs.ErrShutdown,
		jobs.ErrLeaseLost, jobs.ErrClosed, jobs.ErrUnavailable, jobs.ErrMisconfigured,
	}
	for _, s := range sentinels {
		t.Run(string(s.Code), func(t *testing.T) {
			t.Parallel()
			id := uuid.Must(uuid.NewV7())
			err := fmt.Errorf("outer: %w", &jobs.Error{Code: s.Code, Op: "get", JobID: id, Msg: "detail", Err: errors.New("cause")})
			require.ErrorIs(t, err, s)
			for _, other := range sentinels {
				if other != s {
					assert.NotErrorIs(t, err, other)
				}
			}
			e, ok := errors.AsType[*jobs.Error](err)
			require.True(t, ok)
			assert.Equal(t, id, e.JobID)
			assert.Equal(t, s.Code, jobs.CodeOf(err))
		})
	}
}

func TestErrorMessageAndUnwrap(t *testing.T) {
	t.Parallel()
	cause := errors.New("disk on fire")
	id := uuid.MustParse("0190a8b0-0000-7000-8000-000000000001")
	err := &jobs.Error{Code: jobs.CodeUnavailable, Op: "claim", JobID: id, Msg: "storage unavailable", Err: cause}
	require.Equal(t, "jobs: claim 0190a8b0-0000-7000-8000-000000000001: storage unavailable: disk on fire", err.Error())
	require.ErrorIs(t, err, cause)
	require.Equal(t, "jobs: not found", jobs.ErrNotFound.Error())
	// A detailed error is not a sentinel: it must not match other detailed errors.
	require.NotErrorIs(t, err, &jobs.Error{Code: jobs.CodeUnavailable, Op: "claim"})
}

func TestCodeOf(t *testing.T) {
	t.Parallel()
	require.Equal(t, jobs.Code(""), jobs.CodeOf(nil))
	require.Equal(t, jobs.CodeInternal, jobs.CodeOf(errors.New("plain")))
	require.Equal(t, jobs.CodeConflict, jobs.CodeOf(fmt.Errorf("wrapped: %w", jobs.ErrConflict)))
}

func TestPermanentAndRetryAfterWrap(t *testing.T) {
	t.Parallel()
	cause := errors.New("bad input file")
	require.NoError(t, jobs.Permanent(nil))
	require.NoError(t, jobs.RetryAfter(time.Second, nil))
	p := jobs.Permanent(cause)
	require.ErrorIs(t, p, cause)
	require.Equal(t, cause.Error(), p.Error())
	r := jobs.RetryAfter(-time.Second, cause)
	require.ErrorIs(t, r, cause)
	require.Equal(t, cause.Error(), r.Error())
}
