package main

import (
	"context"
	"net/http"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
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
