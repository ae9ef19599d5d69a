package jobs

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCtxErrorMatchesContextAndCause(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := ctxError(ctx, "enqueue")
	require.Equal(t, ErrUnavailable, err.Code)
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, "jobs: enqueue: storage request interrupted: context canceled", err.Error())

	stop := errors.New("shutting down")
	ctx, cancelCause := context.WithCancelCause(t.Context())
	cancelCause(stop)
	err = ctxError(ctx, "enqueue")
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, err, stop, "the cause is kept")
	require.Equal(t, ErrUnavailable, CodeOf(err))
}
