package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

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
