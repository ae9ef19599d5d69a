package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jobsmith/jobs/internal/follow"
)

// events handles GET /api/jobs/{id}/events: Server-Sent Events carrying two
// kinds of event, ending after the job's terminal state.
//
//   - A state event (no "event:" line, so EventSource's "message") has one
//     "data:" line with the job's state as JSON (see update), after each
//     change. Every state is whole, so a client that skips some loses
//     nothing.
//   - An "output" event has one "data:" line {"seq": n, "data": item}: the
//     next item of the job's output (for a transcription, one segment),
//     numbered from 1 without gaps. Every item is sent once, in order, and
//     all of them come before the terminal state.
//
// Every event has the ID "boot.state.output": boot names this server run,
// state is the jobs.Snapshot.Seq of the last state sent on this stream
// (0 before the first), and output is the seq of the last output item
// sent (0 before the first). Both cursors are in every ID because a client
// sends back only the ID of the last event it received, of whichever kind.
// A client that reconnects with that Last-Event-ID gets:
//
//   - the output items after its output cursor, from any server run: item
//     numbers are stored with the job, so no item is skipped or repeated,
//     even after a restart;
//   - the states after its state cursor if boot names this run (Seq is
//     only ordered within one process); otherwise, after a restart, the
//     current state first.
//
// A missing or malformed Last-Event-ID resumes nothing: the whole output
// and the current state.
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
	cur, resume := s.parseEventID(r.Header.Get("Last-Event-ID"))
	ctx, js, stop := s.follow(r, id, cur.output)
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
		ev := js.Next(ctx, keepAlive.C)
		if ev.Kind == follow.End {
			if ev.Err == nil {
				return
			}
			if !started { // nothing sent yet: a plain JSON error (404 …)
				s.fail(w, r, ev.Err)
			} else if ctx.Err() == nil {
				_, body := describeError(ev.Err)
				b, _ := json.Marshal(body)
				_ = write("event: stream-error\ndata: %s\n\n", b)
			}
			return
		}
		if ev.Kind == follow.Tick {
			if started && write(": keep-alive\n\n") != nil {
				return
			}
			continue
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
		var err error
		switch ev.Kind {
		case follow.Output:
			cur.output = ev.Item.Seq
			b, _ := json.Marshal(outputMessage{Seq: ev.Item.Seq, Data: ev.Item.Data})
			err = write("event: output\nid: %s\ndata: %s\n\n", s.eventID(cur), b)
		case follow.State:
			if !resume || ev.State.Seq > cur.state { // else the client has it already
				cur.state = ev.State.Seq
				b, _ := json.Marshal(updateOf(ev.State))
				err = write("id: %s\ndata: %s\n\n", s.eventID(cur), b)
			}
		}
		if err != nil || (ev.Kind == follow.State && ev.State.Status.Terminal()) {
			return
		}
	}
}

// cursor is where a client of the event stream is: the last state and the
// last output item it received.
type cursor struct {
	state  uint64 // jobs.Snapshot.Seq, meaningful within one server run
	output int64  // jobs.OutputItem.Seq, stored with the job
}

// eventID formats c as an event ID of this server run: "boot.state.output".
func (s *server) eventID(c cursor) string {
	return s.bootID + "." + strconv.FormatUint(c.state, 10) + "." + strconv.FormatInt(c.output, 10)
}

// parseEventID reads a Last-Event-ID ("boot.state.output"). The output
// cursor counts from any run; the state cursor only from this one
// (sameRun). Anything malformed resumes nothing.
func (s *server) parseEventID(v string) (c cursor, sameRun bool) {
	parts := strings.Split(v, ".")
	if len(parts) != 3 {
		return cursor{}, false
	}
	state, err1 := strconv.ParseUint(parts[1], 10, 64)
	output, err2 := strconv.ParseUint(parts[2], 10, 63) // no sign, at most MaxInt64
	if err1 != nil || err2 != nil || parts[0] == "" {
		return cursor{}, false
	}
	if parts[0] != s.bootID {
		return cursor{output: int64(output)}, false
	}
	return cursor{state: state, output: int64(output)}, true
}
