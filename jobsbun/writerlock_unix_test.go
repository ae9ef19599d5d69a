//go:build unix

package jobsbun

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// writerLocks opens n writer locks on one directory, as n repositories
// (processes) on one database would, closed when the test ends.
func writerLocks(t *testing.T, n int) []*writerLock {
	t.Helper()
	dir := t.TempDir()
	ls := make([]*writerLock, n)
	for i := range ls {
		ls[i] = &writerLock{}
		ls[i].open(dir)
		t.Cleanup(ls[i].close)
	}
	return ls
}

// TestWriterLockTakesTurns: two repositories (as two processes) on one
// database. While one holds the writer lock the other's write waits; it
// gets the lock as soon as the first lets go.
func TestWriterLockTakesTurns(t *testing.T) {
	t.Parallel()
	ls := writerLocks(t, 3)
	a, b, probe := ls[0], ls[1], ls[2]

	require.True(t, a.acquire(t.Context()))
	got := make(chan bool, 1)
	go func() { got <- b.acquire(context.Background()) }()
	// Another open file of the lock cannot have it while a holds it.
	require.ErrorIs(t, flockRetry(probe.f, syscall.LOCK_EX|syscall.LOCK_NB), syscall.EWOULDBLOCK)
	a.release(false)
	require.True(t, <-got, "b gets the lock once a lets go")
	require.ErrorIs(t, flockRetry(probe.f, syscall.LOCK_EX|syscall.LOCK_NB), syscall.EWOULDBLOCK, "b holds it")
	b.release(false)
	require.NoError(t, flockRetry(probe.f, syscall.LOCK_EX|syscall.LOCK_NB), "let go")
}

// TestWriterLockGivesUpOnAStuckHolder: a write that cannot have the lock
// within writerLockWait goes on without it, and later writes skip the
// lock for a while instead of waiting again; the flock left in flight lets
// go of the lock when it gets it.
func TestWriterLockGivesUpOnAStuckHolder(t *testing.T) {
	t.Parallel()
	ls := writerLocks(t, 2)
	a, b := ls[0], ls[1]

	require.True(t, a.acquire(t.Context()))
	start := time.Now()
	require.False(t, b.acquire(t.Context()), "b goes on without the lock")
	require.GreaterOrEqual(t, time.Since(start), writerLockWait)
	start = time.Now()
	require.False(t, b.acquire(t.Context()), "b skips the lock while a is stuck")
	require.Less(t, time.Since(start), writerLockWait, "without waiting again")
	a.release(false)
	// b's flock in flight takes the lock and lets it go: a has it again.
	require.Eventually(t, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.pending == nil
	}, 10*time.Second, time.Millisecond)
	require.True(t, a.acquire(t.Context()))
	a.release(false)
}

// TestWriterLockKeepsATurn: with more writes of the repository waiting, a
// write keeps the lock for them, up to writerTurn writes in a row; a kept
// lock that no write takes up is let go after writerKeep.
func TestWriterLockKeepsATurn(t *testing.T) {
	t.Parallel()
	ls := writerLocks(t, 2)
	a, probe := ls[0], ls[1]
	free := func() bool {
		if flockRetry(probe.f, syscall.LOCK_EX|syscall.LOCK_NB) != nil {
			return false
		}
		require.NoError(t, flockRetry(probe.f, syscall.LOCK_UN))
		return true
	}

	for i := range writerTurn {
		require.True(t, a.acquire(t.Context()))
		a.release(true)
		if i < writerTurn-1 {
			require.False(t, free(), "write %d keeps the lock for the next", i)
		}
	}
	require.True(t, free(), "let go after a turn of %d writes", writerTurn)

	require.True(t, a.acquire(t.Context()))
	a.release(true)
	require.False(t, free())
	require.Eventually(t, free, 10*time.Second, time.Millisecond, "a kept lock that no write takes up is let go")
}
