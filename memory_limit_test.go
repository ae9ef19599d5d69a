package jobs

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestMemoryLimitedClaimSkipsFullKeys checks that a limited claim of the
// memory repository finds the one job that fits behind a full key's
// backlog, and leaves the backlog pending and in order.
func TestMemoryLimitedClaimSkipsFullKeys(t *testing.T) {
	t.Parallel()
	m := NewMemoryRepository()
	ctx := t.Context()
	for range 5 {
		js := make([]*Job, 200)
		for i := range js {
			js[i] = &Job{Kind: "k", ConcurrencyKey: "big"}
		}
		require.NoError(t, m.Create(ctx, js...))
	}
	q := ClaimQuery{Owner: "o", Limit: 10, LeaseDuration: time.Minute, KindLimits: map[string]Limit{"k": {PerKey: 2}}}
	first, err := m.Claim(ctx, q)
	require.NoError(t, err)
	require.Len(t, first, 2)
	lone := &Job{Kind: "k", ConcurrencyKey: "lone"}
	require.NoError(t, m.Create(ctx, lone))
	got, err := m.Claim(ctx, q)
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, lone.ID, got[0].ID)
	got, err = m.Claim(ctx, q)
	require.NoError(t, err)
	require.Empty(t, got, "every key is full")
	for _, j := range first {
		require.NoError(t, m.Finish(ctx, Completion{Lease: j.Lease(), Status: StatusSucceeded}))
	}
	got, err = m.Claim(ctx, q)
	require.NoError(t, err)
	require.Len(t, got, 2, "the backlog is still there")
	st, err := m.Stats(ctx)
	require.NoError(t, err)
	require.Equal(t, 996, st.ByStatus[StatusPending], fmt.Sprint(st.ByStatus))
}
