// Package logbuf holds a buffer that tests give to code that logs or prints
// from several goroutines, to read what was written.
package logbuf

import (
	"bytes"
	"sync"
)

// Buffer is a bytes.Buffer safe for concurrent use. The zero value is an
// empty buffer.
type Buffer struct {
	// OnWrite, when set, is called after each write with everything
	// written so far, under the buffer's lock: it must not use the buffer.
	OnWrite func(written string)

	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.b.Write(p)
	if s.OnWrite != nil {
		s.OnWrite(s.b.String())
	}
	return n, err
}

// String returns everything written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
