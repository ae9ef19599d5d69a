// Package testrand gives randomised tests numbers they can replay: the
// seed is logged, and JOBS_TEST_SEED=<seed> reproduces a failed run.
package testrand

import (
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
)

// SeedEnv names the variable that replays a randomised test: set it to the
// seed the failed run logged.
const SeedEnv = "JOBS_TEST_SEED"

// New returns the random numbers of a randomised test or benchmark, safe
// for concurrent use. The seed is JOBS_TEST_SEED when set, else random; it
// is logged (shown when the test fails or with -v), so that
// JOBS_TEST_SEED=<seed> go test -run '<test>' replays the same numbers.
func New(tb testing.TB) *rand.Rand {
	tb.Helper()
	seed := rand.Uint64()
	if s := os.Getenv(SeedEnv); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			tb.Fatalf("%s=%q: not a seed: %v", SeedEnv, s, err)
		}
	}
	tb.Logf("random seed %d (replay with %s=%[1]d)", seed, SeedEnv)
	return rand.New(&lockedSource{src: rand.NewPCG(seed, seed)})
}

// lockedSource makes a rand.Source safe for concurrent use; a rand.Rand
// keeps no state besides its source.
type lockedSource struct {
	mu  sync.Mutex
	src rand.Source
}

func (s *lockedSource) Uint64() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.src.Uint64()
}
