package main

import (
	"context"
	"iter"
	"net/http"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
)

// update is one message of the SSE and WebSocket streams: the state of a
// job after a change.
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

// watchItem is one value of Runner.Watch.
type watchItem struct {
	snap jobs.Snapshot
	err  error
}

// pump runs seq on a goroutine and hands its values over the returned
// channel, which is closed when seq ends or ctx is done. The caller owns the
// goroutine: after canceling ctx it must drain the channel. Watch has
// latest-value semantics, so a slow reader skips states but never slows
// the job.
func pump(ctx context.Context, seq iter.Seq2[jobs.Snapshot, error]) <-chan watchItem {
	ch := make(chan watchItem)
	go func() {
		defer close(ch)
		for snap, err := range seq {
			select {
			case ch <- watchItem{snap, err}:
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

// watch starts following job id for a stream; stop cancels and waits.
func (s *server) watch(r *http.Request, id uuid.UUID) (ctx context.Context, ch <-chan watchItem, stop func()) {
	ctx, cancel := s.streamContext(r)
	ch = pump(ctx, s.runner.Watch(ctx, id))
	return ctx, ch, func() {
		cancel()
		for range ch {
		}
	}
}
