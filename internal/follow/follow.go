// Package follow merges what a [jobs.Runner] streams about one job, its
// states ([jobs.Runner.Watch]) and its output ([jobs.Runner.Output]), into
// one ordered stream, for the programs that show both: the jobs command's
// watch, and the examples' SSE and WebSocket streams and progress bar.
package follow

import (
	"context"
	"iter"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
)

// Kind tells what an [Event] is.
type Kind int

const (
	End    Kind = iota // the stream is over; see Event.Err
	State              // Event.State: the job's state changed
	Output             // Event.Item: the next item of the job's output
	Tick               // the tick channel passed to Next fired
)

// Event is one value of [Stream.Next].
type Event struct {
	Kind  Kind
	State jobs.Snapshot
	Item  jobs.OutputItem
	// Err, with End, is why the stream broke: the first error of Watch or
	// Output, such as a jobs.ErrNotFound error. It is nil after the
	// terminal state and when the context is done.
	Err error
}

// Stream follows one job. The job's output items come in order, each once;
// its states come as Watch yields them (a slow reader skips states, never
// items); the terminal state comes last, after every output item, so a
// reader that sees the job end has its whole output. A Stream is not safe
// for concurrent use.
type Stream struct {
	states <-chan result[jobs.Snapshot]   // nil once closed
	items  <-chan result[jobs.OutputItem] // nil once closed
	held   *jobs.Snapshot                 // the terminal state, given once the output has ended
	over   bool
	stop   func()
}

// Start follows job id on r, with the output items numbered after `after`
// (0 for all), until ctx is done or [Stream.Stop] is called. It starts two
// goroutines, which Stop ends and waits for; the caller must call Stop.
func Start(ctx context.Context, r *jobs.Runner, id uuid.UUID, after int64) *Stream {
	ctx, cancel := context.WithCancel(ctx)
	states := pump(ctx, r.Watch(ctx, id))
	items := pump(ctx, r.Output(ctx, id, after))
	return &Stream{states: states, items: items, stop: func() {
		cancel()
		for range states {
		}
		for range items {
		}
	}}
}

// Stop ends the stream and waits for its goroutines. Next returns End
// after it.
func (s *Stream) Stop() {
	s.over = true
	s.stop()
}

// Next waits for the next event: a state, an output item, a tick of tick
// (nil for none), or the end: when ctx is done, after the terminal state,
// or on the first error of Watch or Output. After End it returns End.
func (s *Stream) Next(ctx context.Context, tick <-chan time.Time) Event {
	for {
		switch {
		case s.over:
			return Event{Kind: End}
		case s.held != nil && s.items == nil:
			s.over = true
			return Event{Kind: State, State: *s.held}
		case s.states == nil && s.items == nil && s.held == nil:
			s.over = true
			return Event{Kind: End}
		}
		states := s.states
		if s.held != nil {
			states = nil // Watch ends after the terminal state
		}
		select {
		case <-ctx.Done():
			s.over = true
			return Event{Kind: End}
		case <-tick:
			return Event{Kind: Tick}
		case st, ok := <-states:
			switch {
			case !ok:
				s.states = nil
			case st.err != nil:
				s.over = true
				return Event{Kind: End, Err: st.err}
			case st.v.Status.Terminal():
				s.held = &st.v
			default:
				return Event{Kind: State, State: st.v}
			}
		case it, ok := <-s.items:
			switch {
			case !ok:
				s.items = nil
			case it.err != nil:
				s.over = true
				return Event{Kind: End, Err: it.err}
			default:
				return Event{Kind: Output, Item: it.v}
			}
		}
	}
}

// result is one value of an iter.Seq2 handed over a channel.
type result[T any] struct {
	v   T
	err error
}

// pump runs seq on a goroutine and hands its values over the returned
// channel, which is closed when seq ends, after its first error, or when
// ctx is done. The caller owns the goroutine: after canceling ctx it must
// drain the channel. Runner.Watch has latest-value semantics, so a slow
// reader skips states but never slows the job; Runner.Output waits for
// the reader and skips nothing.
func pump[T any](ctx context.Context, seq iter.Seq2[T, error]) <-chan result[T] {
	ch := make(chan result[T])
	go func() {
		defer close(ch)
		for v, err := range seq {
			select {
			case ch <- result[T]{v, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return ch
}
