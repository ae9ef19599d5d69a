//go:build !unix

package jobsbun

import "context"

// writerLock does nothing without flock(2): writers wait in SQLite's busy
// handler (see writerlock_unix.go).
type writerLock struct{}

func (l *writerLock) open(string)                  {}
func (l *writerLock) acquire(context.Context) bool { return false }
func (l *writerLock) release(bool)                 {}
func (l *writerLock) close()                       {}
