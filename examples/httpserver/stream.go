package main

import (
	"context"
	"encoding/json"
	"iter"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
)

// update is one state message of the SSE and WebSocket streams: the state
// of a job after a change.
type update struct {
	ID       uuid.UUID   `json:"id"`
	Status   jobs.Status `json:"status"`
	Progress float64     `json:"progress"` // fraction 0..1
	Message  string      `json:"message"`
	Error    string      `json:"error,omitempty"`
}

func updateOf(s jobs.Snapshot) update {
	return update{ID: s.ID, Status: s.Status, Progress: s.Progress, Message: s.Message, Error: s.Error}
}

// outputMessage is one output message of the streams: an item of the job's
// output (for a transcription, one segment), numbered from 1.
type outputMessage struct {
	Seq  int64           `json:"seq"`
	Data json.RawMessage `json:"data"`
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

// eventKind tells what an event of a jobStream is.
type eventKind int

const (
	evEnd       eventKind = iota // the stream is over; see event.err
	evState                      // event.state: the job's state changed
	evOutput                     // event.item: the next item of the job's output
	evKeepAlive                  // the keep-alive ticker fired
)

// event is one value of jobStream.next.
type event struct {
	kind  eventKind
	state jobs.Snapshot
	item  jobs.OutputItem
	err   error // with evEnd: why the stream broke; nil after the terminal state or when ctx is done
}

// jobStream follows one job for a stream: its states (Runner.Watch) and
// its output after a sequence number (Runner.Output), merged into one
// order in which the terminal state comes last, after every output item,
// so a client that sees the job end has its whole output. It is not safe
// for concurrent use.
type jobStream struct {
	states <-chan result[jobs.Snapshot]   // nil once closed
	items  <-chan result[jobs.OutputItem] // nil once closed
	held   *jobs.Snapshot                 // the terminal state, sent once the output has ended
	over   bool
	stop   func()
}

// follow starts following job id for a stream, with the output items
// numbered after `after`. The returned context is r's, also ended by the
// server's shutdown; stop ends the stream and waits for its goroutines.
func (s *server) follow(r *http.Request, id uuid.UUID, after int64) (context.Context, *jobStream) {
	ctx, cancel := s.streamContext(r)
	states := pump(ctx, s.runner.Watch(ctx, id))
	items := pump(ctx, s.runner.Output(ctx, id, after))
	return ctx, &jobStream{states: states, items: items, stop: func() {
		cancel()
		for range states {
		}
		for range items {
		}
	}}
}

// next waits for the next event: a state, an output item, a tick of
// keepAlive (nil for none), or the end, when ctx is done, after the
// terminal state, or on the first error of either source.
func (js *jobStream) next(ctx context.Context, keepAlive <-chan time.Time) event {
	for {
		switch {
		case js.over:
			return event{kind: evEnd}
		case js.held != nil && js.items == nil:
			js.over = true
			return event{kind: evState, state: *js.held}
		case js.states == nil && js.items == nil && js.held == nil:
			js.over = true
			return event{kind: evEnd}
		}
		states := js.states
		if js.held != nil {
			states = nil // Watch ends after the terminal state
		}
		select {
		case <-ctx.Done():
			js.over = true
			return event{kind: evEnd}
		case <-keepAlive:
			return event{kind: evKeepAlive}
		case st, ok := <-states:
			switch {
			case !ok:
				js.states = nil
			case st.err != nil:
				js.over = true
				return event{kind: evEnd, err: st.err}
			case st.v.Status.Terminal():
				js.held = &st.v
			default:
				return event{kind: evState, state: st.v}
			}
		case it, ok := <-js.items:
			switch {
			case !ok:
				js.items = nil
			case it.err != nil:
				js.over = true
				return event{kind: evEnd, err: it.err}
			default:
				return event{kind: evOutput, item: it.v}
			}
		}
	}
}
