package main

import (
	"context"
	"net/http"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/follow"
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

// websocket handles GET /ws/jobs/{id}?after=N: after the Origin check
// (403 before any upgrade) it sends one JSON message per event and closes
// normally after the terminal state. Each message has a "type":
//
//   - "state": the job's state after a change, with the fields of update
//     ({"type":"state","id":…,"status":…,"progress":{"fraction":…,"message":…},"attempt":…});
//   - "output": the next item of the job's output, {"type":"output",
//     "seq":n,"data":item}, numbered from 1 without gaps; every item is sent
//     once, in order, and all of them before the terminal state.
//
// A client that reconnects passes the seq of the last output item it
// received as "after" and gets the items after it only, from any server
// run (the numbers are stored with the job), then the current state.
// Incoming messages are not expected: the read side only handles control
// frames, with a small read limit. Every write has a deadline, so a client
// that stops reading is dropped.
func (s *server) websocket(w http.ResponseWriter, r *http.Request) {
	id, err := jobID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	after, err := outputAfter(r)
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
	ctx, js, stop := s.follow(r, id, after)
	defer stop()
	ev := js.Next(ctx, nil) // before the upgrade, so an unknown job is a plain 404
	if ev.Kind == follow.End {
		if ev.Err != nil {
			s.fail(w, r, ev.Err)
		}
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

	send := func(v any) error {
		wctx, cancel := context.WithTimeout(ctx, s.writeTimeout)
		defer cancel()
		return wsjson.Write(wctx, c, v)
	}
	keepAlive := time.NewTicker(s.keepAlive)
	defer keepAlive.Stop()
	for ; ; ev = js.Next(ctx, keepAlive.C) {
		switch ev.Kind {
		case follow.End:
			switch {
			case ctx.Err() != nil:
				c.Close(websocket.StatusGoingAway, "server shutting down")
			case ev.Err != nil:
				c.Close(websocket.StatusInternalError, string(jobs.CodeOf(ev.Err)))
			}
			return
		case follow.Tick:
			pctx, cancel := context.WithTimeout(ctx, s.writeTimeout)
			err := c.Ping(pctx)
			cancel()
			if err != nil {
				return
			}
		case follow.Output:
			if send(wsOutput{Type: "output", outputMessage: outputMessage{Seq: ev.Item.Seq, Data: ev.Item.Data}}) != nil {
				return
			}
		case follow.State:
			if send(wsState{Type: "state", update: updateOf(ev.State)}) != nil {
				return
			}
			if ev.State.Status.Terminal() {
				c.Close(websocket.StatusNormalClosure, string(ev.State.Status))
				return
			}
		}
	}
}

// wsState and wsOutput are the WebSocket messages: an update or an output
// message with its type.
type (
	wsState struct {
		Type string `json:"type"` // "state"
		update
	}
	wsOutput struct {
		Type string `json:"type"` // "output"
		outputMessage
	}
)
