package jobs

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// TestMemBucketOrder checks the pending index against a sort: after random
// adds and removes, claims come out highest priority first, then oldest
// RunAt, and scheduled jobs only once their RunAt has come.
func TestMemBucketOrder(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b := newMemBucket(memBucketKey{"q", "k"})
	var live []*memRecord
	for range 500 {
		r := &memRecord{heapIdx: -1, job: Job{
			ID:       uuid.Must(uuid.NewV7()),
			Priority: rng.IntN(5) - 2,
			RunAt:    base.Add(time.Duration(rng.IntN(200)) * time.Second),
		}}
		b.add(r, base.Add(100*time.Second))
		live = append(live, r)
		if rng.IntN(4) == 0 {
			victim := live[rng.IntN(len(live))]
			b.remove(victim)
			live = slices.DeleteFunc(live, func(r *memRecord) bool { return r == victim })
		}
	}
	now := base.Add(150 * time.Second)
	b.promote(now, nil)
	var want []*memRecord
	for _, r := range live {
		if !r.job.RunAt.After(now) {
			want = append(want, r)
		}
	}
	slices.SortFunc(want, func(x, y *memRecord) int {
		if claimsBefore(x, y) {
			return -1
		}
		return 1
	})
	var got []*memRecord
	for b.peek() != nil {
		got = append(got, b.popReady())
	}
	require.Equal(t, len(want), len(got))
	for i := range want {
		require.Same(t, want[i], got[i], "claim %d", i)
	}
	require.Equal(t, len(live)-len(want), b.scheduled.Len(), "future jobs stay scheduled")
	require.False(t, b.empty())
}
