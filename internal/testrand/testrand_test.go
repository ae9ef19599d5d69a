package testrand

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The same JOBS_TEST_SEED gives the same numbers; a malformed one is
// refused rather than silently replaced by a random seed.
func TestSeedReplays(t *testing.T) {
	t.Setenv(SeedEnv, "42")
	a, b := New(t), New(t)
	for range 10 {
		require.Equal(t, a.Uint64(), b.Uint64())
	}
}
