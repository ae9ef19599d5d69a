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
		{"no rows", sql.ErrNoRows, CodeNotFound},
		{"ctx canceled", context.Canceled, CodeUnavailable},
		{"deadline", fmt.Errorf("query: %w", context.DeadlineExceeded), CodeUnavailable},
		{"db closed", errors.New("sql: database is closed"), CodeClosed},
		{"conn done", sql.ErrConnDone, CodeClosed},
		{"tx rolled back", fmt.Errorf("commit: %w", sql.ErrTxDone), CodeUnavailable},
		{"sqlite busy", fakeSQLiteErr{sqliteBusy}, CodeUnavailable},
		{"sqlite busy snapshot (extended)", fakeSQLiteErr{517}, CodeUnavailable},
		{"sqlite readonly", fakeSQLiteErr{sqliteReadOnly}, CodeUnavailable},
		{"sqlite full", fakeSQLiteErr{sqliteFull}, CodeUnavailable},
		{"locked text", errors.New("database is locked (5) (SQLITE_BUSY)"), CodeUnavailable},
		{"readonly text", errors.New("attempt to write a readonly database (8)"), CodeUnavailable},
		{"disk full text", errors.New("database or disk is full (13)"), CodeUnavailable},
		{"bad conn", driver.ErrBadConn, CodeUnavailable},
		{"pg conn", fakePgErr{"08006"}, CodeUnavailable},
		{"pg terminated", fakePgErr{"57P01"}, CodeUnavailable},
		{"pg disk full", fakePgErr{"53100"}, CodeUnavailable},
		{"pg read only", fakePgErr{"25006"}, CodeUnavailable},
		{"pg serialization", fakePgErr{"40001"}, CodeUnavailable},
		{"pg bad jsonb", fakePgErr{"22P05"}, CodeInvalidArgument},
		{"pg no such schema", fakePgErr{"3F000"}, CodeMisconfigured},
		{"pg syntax", fakePgErr{"42601"}, CodeInternal},
		{"refused", errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), CodeUnavailable},
		{"other", errors.New("no such table: jobs"), CodeInternal},
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
