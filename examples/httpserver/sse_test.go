package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

// sseEvent is one Server-Sent Event.
type sseEvent struct {
	id, event, data string
	seq             uint64
	upd             update
}

// openEvents starts GET …/events; cancel ends the request.
func (e *env) openEvents(id uuid.UUID, lastEventID string) (*http.Response, context.CancelFunc) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(e.t.Context())
	req, err := http.NewRequestWithContext(ctx, "GET", e.url+"/api/jobs/"+id.String()+"/events", nil)
	require.NoError(e.t, err)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	return res, func() { cancel(); res.Body.Close() }
}

// readEvents parses events from r until EOF or until stop returns true.
func readEvents(t *testing.T, r io.Reader, stop func(sseEvent) bool) []sseEvent {
	t.Helper()
	var out []sseEvent
	var ev sseEvent
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev.data == "" {
				ev = sseEvent{}
				continue // retry: or keep-alive blocks
			}
			if ev.event == "" {
				require.NoError(t, json.Unmarshal([]byte(ev.data), &ev.upd))
				_, n, ok := strings.Cut(ev.id, ".")
				require.True(t, ok, "event id %q", ev.id)
				var err error
				ev.seq, err = strconv.ParseUint(n, 10, 64)
				require.NoError(t, err)
			}
			out = append(out, ev)
			if stop != nil && stop(ev) {
				return out
			}
			ev = sseEvent{}
		case strings.HasPrefix(line, "id: "):
			ev.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			ev.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			ev.data = line[6:]
		}
	}
	return out
}

func TestSSEWatchesToCompletion(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{delay: 10 * time.Millisecond})
	job := e.createTranscription("tone:3s")
	res, done := e.openEvents(job.ID, "")
	defer done()
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "text/event-stream", res.Header.Get("Content-Type"))
	evs := readEvents(t, res.Body, nil) // the server ends the stream at the terminal state
	require.NotEmpty(t, evs)
	last := evs[len(evs)-1]
	require.Equal(t, jobs.StatusSucceeded, last.upd.Status)
	require.Equal(t, 1.0, last.upd.Progress)
	require.Equal(t, job.ID, last.upd.ID)
	for i := 1; i < len(evs); i++ {
		require.Greater(t, evs[i].seq, evs[i-1].seq, "event ids increase")
		if evs[i].upd.Status == evs[i-1].upd.Status {
			require.GreaterOrEqual(t, evs[i].upd.Progress, evs[i-1].upd.Progress)
		}
	}
}

func TestSSEResumesAfterLastEventID(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{delay: 20 * time.Millisecond})
	job := e.createTranscription("tone:10s") // 20 segments, about 0.4 s
	res, done := e.openEvents(job.ID, "")
	first := readEvents(t, res.Body, func(ev sseEvent) bool { return ev.upd.Progress > 0.1 })
	done()
	seen := first[len(first)-1]
	require.False(t, seen.upd.Status.Terminal(), "the job is still running")

	res, done = e.openEvents(job.ID, seen.id)
	rest := readEvents(t, res.Body, nil)
	done()
	require.NotEmpty(t, rest)
	for _, ev := range rest {
		require.Greater(t, ev.seq, seen.seq, "nothing the client already had")
	}
	require.Equal(t, jobs.StatusSucceeded, rest[len(rest)-1].upd.Status)

	// An ID from another server run (or garbage) resumes nothing: the
	// client gets the current state.
	for _, id := range []string{"otherboot.99999999", "garbage", strings.Repeat("9", 5000)} {
		res, done = e.openEvents(job.ID, id)
		evs := readEvents(t, res.Body, nil)
		done()
		require.Len(t, evs, 1, id)
		require.Equal(t, jobs.StatusSucceeded, evs[0].upd.Status)
	}
}

func TestSSEUnknownJobAndShutdown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{noRun: true})
	res, body := e.do("GET", "/api/jobs/"+uuid.NewString()+"/events", "")
	requireError(t, res, body, http.StatusNotFound, jobs.ErrNotFound)

	job := e.createTranscription("tone:1s") // stays pending: the runner is not running
	res, done := e.openEvents(job.ID, "")
	defer done()
	evs := readEvents(t, res.Body, func(sseEvent) bool { return true })
	require.Equal(t, jobs.StatusPending, evs[0].upd.Status)
	e.shutdown()
	_, err := io.Copy(io.Discard, res.Body)
	require.NoError(t, err, "the stream ends cleanly at shutdown")
}

func TestSSEKeepAlive(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{noRun: true, tweak: func(s *server) { s.keepAlive = 10 * time.Millisecond }})
	job := e.createTranscription("tone:1s")
	res, done := e.openEvents(job.ID, "")
	defer done()
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if sc.Text() == ": keep-alive" {
			return
		}
	}
	t.Fatal("no keep-alive comment")
}
