package jobs

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"testing"

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
		want Code
	}{
		{"no rows", sql.ErrNoRows, ErrNotFound},
		{"ctx canceled", context.Canceled, ErrUnavailable},
		{"deadline", fmt.Errorf("query: %w", context.DeadlineExceeded), ErrUnavailable},
		{"db closed", errors.New("sql: database is closed"), ErrClosed},
		{"conn done", sql.ErrConnDone, ErrClosed},
		{"tx rolled back", fmt.Errorf("commit: %w", sql.ErrTxDone), ErrUnavailable},
		{"sqlite busy", fakeSQLiteErr{sqliteBusy}, ErrUnavailable},
		{"sqlite busy snapshot (extended)", fakeSQLiteErr{517}, ErrUnavailable},
		{"sqlite readonly", fakeSQLiteErr{sqliteReadOnly}, ErrUnavailable},
		{"sqlite full", fakeSQLiteErr{sqliteFull}, ErrUnavailable},
		{"locked text", errors.New("database is locked (5) (SQLITE_BUSY)"), ErrUnavailable},
		{"readonly text", errors.New("attempt to write a readonly database (8)"), ErrUnavailable},
		{"disk full text", errors.New("database or disk is full (13)"), ErrUnavailable},
		{"bad conn", driver.ErrBadConn, ErrUnavailable},
		{"pg conn", fakePgErr{"08006"}, ErrUnavailable},
		{"pg terminated", fakePgErr{"57P01"}, ErrUnavailable},
		{"pg disk full", fakePgErr{"53100"}, ErrUnavailable},
		{"pg read only", fakePgErr{"25006"}, ErrUnavailable},
		{"pg serialization", fakePgErr{"40001"}, ErrUnavailable},
		{"pg bad jsonb", fakePgErr{"22P05"}, ErrInvalidArgument},
		{"pg no such schema", fakePgErr{"3F000"}, ErrInvalidArgument},
		{"pg syntax", fakePgErr{"42601"}, ErrInternal},
		{"refused", errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), ErrUnavailable},
		{"other", errors.New("no such table: jobs"), ErrInternal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id := uuid.New()
			err := storageError("op", id, tc.err)
			require.Equal(t, tc.want, CodeOf(err))
			e, ok := errors.AsType[*Error](err)
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
