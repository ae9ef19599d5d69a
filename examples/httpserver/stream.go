package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
)

// readWS reads (and so answers control frames of) a server-push
// connection until it closes. A message over the read limit closes it with
// 1009, any other data message with 1008: clients have nothing to say. The
// returned context ends when the connection does. Unlike c.CloseRead, the
// read limit is enforced before the policy check. The goroutine ends when
// the connection closes; done is closed then.
func (s *server) readWS(ctx context.Context, c *websocket.Conn) (context.Context, <-chan struct{}) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer cancel()
		if _, _, err := c.Read(ctx); err == nil {
			c.Close(websocket.StatusPolicyViolation, "unexpected data message")
		}
	}()
	return ctx, done
}

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

// events handles GET /api/jobs/{id}/events: Server-Sent Events, one "data:"
// line of JSON per change, ending after the terminal state. Each event has
// an ID "boot.seq" (seq from jobs.Snapshot.Seq, boot naming this server
// run). A client that reconnects with Last-Event-ID gets no state it
// already had from this run, only later ones; every update is a whole
// state, so nothing is lost by skipping. After a restart the old IDs mean
// nothing and the client gets the current state first.
func (s *server) events(w http.ResponseWriter, r *http.Request) {
	id, err := jobID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	release, ok := s.acquireStream()
	if !ok {
		s.fail(w, r, httpError(codeTooManyRequests, ""))
		return
	}
	defer release()
	after, resume := s.parseEventID(r.Header.Get("Last-Event-ID"))
	ctx, ch, stop := s.watch(r, id)
	defer stop()

	// Each write sets its own deadline, which also lifts the server's
	// WriteTimeout for a long stream (net/http clears the read deadline
	// itself once the request is read).
	rc := http.NewResponseController(w)
	write := func(format string, args ...any) error {
		if err := rc.SetWriteDeadline(time.Now().Add(s.writeTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
		if _, err := fmt.Fprintf(w, format, args...); err != nil {
			return err
		}
		return rc.Flush()
	}
	started := false
	keepAlive := time.NewTicker(s.keepAlive)
	defer keepAlive.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-keepAlive.C:
			if started && write(": keep-alive\n\n") != nil {
				return
			}
		case it, ok := <-ch:
			if !ok {
				return
			}
			if it.err != nil {
				if !started { // nothing sent yet: a plain JSON error (404 …)
					s.fail(w, r, it.err)
				} else if ctx.Err() == nil {
					_, body := describeError(it.err)
					b, _ := json.Marshal(body)
					_ = write("event: stream-error\ndata: %s\n\n", b)
				}
				return
			}
			if !started {
				h := w.Header()
				h.Set("Content-Type", "text/event-stream")
				h.Set("Cache-Control", "no-store")
				h.Set("X-Accel-Buffering", "no")
				w.WriteHeader(http.StatusOK)
				started = true
				if write("retry: 2000\n\n") != nil {
					return
				}
			}
			if resume && it.snap.Seq <= after {
				continue // the client has this state already
			}
			b, _ := json.Marshal(updateOf(it.snap))
			if write("id: %s.%d\ndata: %s\n\n", s.bootID, it.snap.Seq, b) != nil {
				return
			}
			if it.snap.Status.Terminal() {
				return
			}
		}
	}
}

// parseEventID reads a Last-Event-ID of this server's run ("boot.seq").
// IDs from an earlier run (or garbage) resume nothing: the client gets
// the full current state.
func (s *server) parseEventID(v string) (seq uint64, ok bool) {
	boot, n, found := strings.Cut(v, ".")
	if !found || boot != s.bootID {
		return 0, false
	}
	seq, err := strconv.ParseUint(n, 10, 64)
	return seq, err == nil
}

// websocket handles GET /ws/jobs/{id}: after the Origin check (403 before
// any upgrade) it sends one JSON update per change and closes normally
// after the terminal state. Incoming messages are not expected: the read
// side only handles control frames, with a small read limit. Every write
// has a deadline, so a client that stops reading is dropped.
func (s *server) websocket(w http.ResponseWriter, r *http.Request) {
	id, err := jobID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// CrossOriginProtection lets every GET through, so the upgrade is
	// checked here, before Accept.
	if !s.sameOrigin(r) {
		s.fail(w, r, httpError(codeForbidden, "cross-origin WebSocket refused"))
		return
	}
	release, ok := s.acquireStream()
	if !ok {
		s.fail(w, r, httpError(codeTooManyRequests, ""))
		return
	}
	defer release()
	ctx, ch, stop := s.watch(r, id)
	defer stop()
	first, ok := <-ch // before the upgrade, so an unknown job is a plain 404
	if !ok {
		return
	}
	if first.err != nil {
		s.fail(w, r, first.err)
		return
	}
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: s.cfg.AllowedOrigins})
	if err != nil {
		return // Accept has written the response
	}
	defer c.CloseNow()
	c.SetReadLimit(wsReadLimit)
	ctx, readDone := s.readWS(ctx, c)
	defer func() {
		c.CloseNow()
		<-readDone
	}()

	send := func(snap jobs.Snapshot) error {
		wctx, cancel := context.WithTimeout(ctx, s.writeTimeout)
		defer cancel()
		return wsjson.Write(wctx, c, updateOf(snap))
	}
	keepAlive := time.NewTicker(s.keepAlive)
	defer keepAlive.Stop()
	it := first
	for {
		if it.err != nil {
			if ctx.Err() == nil {
				c.Close(websocket.StatusInternalError, string(jobs.CodeOf(it.err)))
			}
			return
		}
		if err := send(it.snap); err != nil {
			return
		}
		if it.snap.Status.Terminal() {
			c.Close(websocket.StatusNormalClosure, string(it.snap.Status))
			return
		}
		for waiting := true; waiting; {
			select {
			case <-ctx.Done():
				c.Close(websocket.StatusGoingAway, "server shutting down")
				return
			case <-keepAlive.C:
				pctx, cancel := context.WithTimeout(ctx, s.writeTimeout)
				err := c.Ping(pctx)
				cancel()
				if err != nil {
					return
				}
			case it, ok = <-ch:
				if !ok {
					return
				}
				waiting = false
			}
		}
	}
}
