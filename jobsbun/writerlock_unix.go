//go:build unix

package jobsbun

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// The writer lock takes turns between processes on one SQLite file. SQLite
// lets one writer in at a time; a process that finds the file locked
// sleeps in SQLite's busy handler (1, 2, 5, … up to 100 ms) while the
// process that just committed takes the lock again at once: with four
// processes draining one file, one process did 8 of 100 000 jobs. Each
// write of a repository therefore first takes an exclusive flock(2) on
// "<database file>-owners/writer", waiting in the kernel, which wakes the
// waiters as soon as the lock is let go: the four then do a quarter of the
// work each.
//
// The lock orders writers; it guards nothing: SQLite's own locking still
// keeps every write safe. A write that cannot have the lock within
// writerLockWait goes on without it, and the repository's writes skip it
// for writerSkip (a process paused while holding it must not slow the
// others down for long). Writers that do not take it (other programs,
// CreateTx in the caller's transaction) wait in SQLite's busy handler as
// before.

// writerLockWait bounds the wait for the writer lock; after a wait in vain
// the repository's writes go without it for writerSkip.
const (
	writerLockWait = 250 * time.Millisecond
	writerSkip     = time.Second
	writerTurn     = 8                     // writes a repository may make in a row while others wait
	writerKeep     = 10 * time.Millisecond // how long a kept lock waits for the next write
)

// writerLock is a repository's side of the writer lock. acquire and release
// are called by one write at a time (the repository's write gate).
type writerLock struct {
	once sync.Once
	f    *os.File // nil: no lock (a database in memory, or no file)

	mu      sync.Mutex
	pending chan error // a blocking flock in flight, or nil
	wanted  bool       // a write waits for pending's result
	held    bool
	kept    *time.Timer // the lock is kept for the next write of this repository; lets it go at writerKeep
	turn    int         // writes in a row under one lock
	skip    time.Time   // writes go without the lock until then
	closed  bool
}

// open opens the lock file in dir (the owners directory) once.
func (l *writerLock) open(dir string) {
	l.once.Do(func() {
		if dir == "" || os.MkdirAll(dir, 0o755) != nil {
			return
		}
		f, err := os.OpenFile(filepath.Join(dir, "writer"), os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC, 0o644)
		if err == nil {
			l.f = f
		}
	})
}

// acquire takes the lock, waiting up to writerLockWait (or ctx); it returns
// whether it holds the lock.
func (l *writerLock) acquire(ctx context.Context) bool {
	if l.f == nil || time.Now().Before(l.skip) {
		return false
	}
	l.mu.Lock()
	if l.kept != nil && l.kept.Stop() {
		l.kept, l.held = nil, true
		l.turn++
		l.mu.Unlock()
		return true
	}
	l.kept, l.turn = nil, 0
	if l.pending == nil {
		if flockRetry(l.f, syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			l.held = true
			l.mu.Unlock()
			return true
		}
		ch := make(chan error, 1)
		l.pending = ch
		go l.wait(ch)
	}
	l.wanted = true
	ch := l.pending
	l.mu.Unlock()
	t := time.NewTimer(writerLockWait)
	defer t.Stop()
	select {
	case err := <-ch:
		l.mu.Lock()
		l.held = err == nil
		l.mu.Unlock()
		return err == nil
	case <-ctx.Done():
	case <-t.C:
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case err := <-ch: // came in meanwhile
		l.held = err == nil
		return err == nil
	default:
		// The flock in flight lets go of the lock when it gets it. A
		// holder that keeps the lock this long is stuck (paused, or its
		// disk is): writes go without the lock for a while.
		l.wanted = false
		l.skip = time.Now().Add(writerSkip)
		return false
	}
}

// wait takes the lock, blocking, and hands the result to the write that
// waits for it, or lets go of the lock when that write gave up.
func (l *writerLock) wait(ch chan error) {
	err := flockRetry(l.f, syscall.LOCK_EX)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending = nil
	switch {
	case l.closed:
		l.f.Close() // lets go of the lock
	case l.wanted || err != nil:
		l.wanted = false
		ch <- err
	default:
		_ = flockRetry(l.f, syscall.LOCK_UN)
	}
}

// release lets go of the lock after a write that held it; with more
// writes of this repository waiting (next), it keeps the lock for them, up
// to writerTurn writes in a row and for writerKeep at most, so that a
// process makes a few writes per turn instead of one.
func (l *writerLock) release(next bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.held {
		return
	}
	l.held = false
	if next && l.turn+1 < writerTurn && !l.closed {
		l.kept = time.AfterFunc(writerKeep, l.letGo)
		return
	}
	_ = flockRetry(l.f, syscall.LOCK_UN)
}

// letGo lets go of a kept lock that no write took up.
func (l *writerLock) letGo() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.kept != nil && !l.held {
		l.kept = nil
		_ = flockRetry(l.f, syscall.LOCK_UN)
	}
}

// close closes the lock file, which lets go of the lock; with a flock in
// flight, that flock's end closes it.
func (l *writerLock) close() {
	l.once.Do(func() {}) // no open after close
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.kept != nil {
		l.kept.Stop()
		l.kept = nil
	}
	if l.f != nil && l.pending == nil {
		l.f.Close()
	}
}

// flockRetry calls flock(2), retrying on EINTR.
func flockRetry(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
