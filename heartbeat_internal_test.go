package jobs

import (
	"errors"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// Repositories join per-job errors, sometimes in nested joins (Finish
// joins its dropped duplicates with the errors of its statements): every
// job's error must reach the runner, not only the first one's.
func TestSplitErrorsReadsNestedJoins(t *testing.T) {
	a, b, c := uuid.New(), uuid.New(), uuid.New()
	other := errors.New("storage")
	err := errors.Join(leaseLost("finish", a), errors.Join(leaseLost("finish", b), canceledInstead("finish", c, StatusSucceeded)), other)
	perJob, rest := splitErrors(err)
	require.Len(t, perJob, 3)
	require.ErrorIs(t, perJob[a], ErrLeaseLost)
	require.ErrorIs(t, perJob[b], ErrLeaseLost)
	require.ErrorIs(t, perJob[c], ErrCanceled)
	require.ErrorIs(t, rest, other)
}
