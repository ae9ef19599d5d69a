package jobsbun

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"testing"

	"github.com/jobsmith/jobs"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

type fakeSQLiteErr struct{ code int }

func (e fakeSQLiteErr) Error() string { return fmt.Sprintf("sqlite error %d", e.code) }
func (e fakeSQLiteErr) Code() int     { return e.code }

type fakePgErr struct{ state string }

func (e fakePgErr) Error() string    { return "ERROR: something (SQLSTATE " + e.state + ")" }
func (e fakePgErr) SQLState() string { return e.state }

func TestStorageErrorCodes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
		want jobs.Code
	}{
		{"no rows", sql.ErrNoRows, jobs.ErrNotFound},
		{"ctx canceled", context.Canceled, jobs.ErrUnavailable},
		{"deadline", fmt.Errorf("query: %w", context.DeadlineExceeded), jobs.ErrUnavailable},
		{"db closed", errors.New("sql: database is closed"), jobs.ErrClosed},
		{"conn done", sql.ErrConnDone, jobs.ErrClosed},
		{"tx rolled back", fmt.Errorf("commit: %w", sql.ErrTxDone), jobs.ErrUnavailable},
		{"sqlite busy", fakeSQLiteErr{sqliteBusy}, jobs.ErrUnavailable},
		{"sqlite busy snapshot (extended)", fakeSQLiteErr{517}, jobs.ErrUnavailable},
		{"sqlite readonly", fakeSQLiteErr{sqliteReadOnly}, jobs.ErrUnavailable},
		{"sqlite full", fakeSQLiteErr{sqliteFull}, jobs.ErrUnavailable},
		{"locked text", errors.New("database is locked (5) (SQLITE_BUSY)"), jobs.ErrUnavailable},
		{"readonly text", errors.New("attempt to write a readonly database (8)"), jobs.ErrUnavailable},
		{"disk full text", errors.New("database or disk is full (13)"), jobs.ErrUnavailable},
		{"bad conn", driver.ErrBadConn, jobs.ErrUnavailable},
		{"pg conn", fakePgErr{"08006"}, jobs.ErrUnavailable},
		{"pg terminated", fakePgErr{"57P01"}, jobs.ErrUnavailable},
		{"pg disk full", fakePgErr{"53100"}, jobs.ErrUnavailable},
		{"pg read only", fakePgErr{"25006"}, jobs.ErrUnavailable},
		{"pg serialization", fakePgErr{"40001"}, jobs.ErrUnavailable},
		{"pg bad jsonb", fakePgErr{"22P05"}, jobs.ErrInvalidArgument},
		{"pg no such schema", fakePgErr{"3F000"}, jobs.ErrInvalidArgument},
		{"pg syntax", fakePgErr{"42601"}, jobs.Code("internal")},
		{"refused", errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), jobs.ErrUnavailable},
		{"other", errors.New("no such table: jobs"), jobs.Code("internal")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id := uuid.New()
			err := storageError("op", id, tc.err)
			require.Equal(t, tc.want, jobs.CodeOf(err))
			e, ok := errors.AsType[*jobs.Error](err)
			require.True(t, ok)
			require.Equal(t, "op", e.Op)
			require.Equal(t, id, e.JobID)
			require.ErrorIs(t, err, tc.err, "the cause stays reachable")
		})
	}
	require.NoError(t, storageError("op", uuid.Nil, nil))
	own := leaseLost("finish", uuid.New())
	require.Same(t, own, storageError("op", uuid.Nil, own))
}

func TestIsBusyOnlyForLockConditions(t *testing.T) {
	t.Parallel()
	require.True(t, isBusy(fakeSQLiteErr{sqliteLocked}))
	require.True(t, isBusy(fakePgErr{"40P01"}))
	require.False(t, isBusy(fakeSQLiteErr{sqliteFull}))
	require.False(t, isBusy(fakePgErr{"08006"}), "a lost connection may have committed: never retried blindly")
	require.False(t, isBusy(errors.New("syntax error")))
}
