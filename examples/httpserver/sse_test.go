package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/examples/internal/transcribe"
	"github.com/stretchr/testify/require"
)

// sseEvent is one Server-Sent Event: a state (event "") or an output item
// (event "output"), with the cursors of its ID "boot.state.output".
type sseEvent struct {
	id, event, data string
	boot            string
	state           uint64        // the ID's state cursor
	output          int64         // the ID's output cursor
	upd             update        // a state event's data
	out             outputMessage // an output event's data
}

// isOutput reports whether ev is an output item.
func (ev sseEvent) isOutput() bool { return ev.event == "output" }

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
func readEvents(t testing.TB, r io.Reader, stop func(sseEvent) bool) []sseEvent {
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
			switch ev.event {
			case "":
				require.NoError(t, json.Unmarshal([]byte(ev.data), &ev.upd))
			case "output":
				require.NoError(t, json.Unmarshal([]byte(ev.data), &ev.out))
			}
			if ev.event != "stream-error" {
				parts := strings.Split(ev.id, ".")
				require.Len(t, parts, 3, "event id %q", ev.id)
				var err error
				ev.boot = parts[0]
				ev.state, err = strconv.ParseUint(parts[1], 10, 64)
				require.NoError(t, err)
				ev.output, err = strconv.ParseInt(parts[2], 10, 64)
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

// outputSeqs returns the seq of each output event.
func outputSeqs(evs []sseEvent) []int64 {
	var seqs []int64
	for _, ev := range evs {
		if ev.isOutput() {
			seqs = append(seqs, ev.out.Seq)
		}
	}
	return seqs
}

// seqRange returns from, from+1, …, to.
func seqRange(from, to int64) []int64 {
	var s []int64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

// requireSegment checks that an output item is segment seq-1 of a
// transcription in half-second segments.
func requireSegment(t testing.TB, seq int64, data json.RawMessage) {
	t.Helper()
	var seg transcribe.Segment
	require.NoError(t, json.Unmarshal(data, &seg))
	require.InDelta(t, float64(seq-1)*0.5, seg.Start, 1e-9, "item %d", seq)
	require.InDelta(t, float64(seq)*0.5, seg.End, 1e-9, "item %d", seq)
	require.Contains(t, []string{"speech", "silence"}, seg.Text)
}

func TestSSEWatchesToCompletion(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{delay: 10 * time.Millisecond})
	job := e.createTranscription("tone:3s") // 6 segments
	res, done := e.openEvents(job.ID, "")
	defer done()
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "text/event-stream", res.Header.Get("Content-Type"))
	evs := readEvents(t, res.Body, nil) // the server ends the stream at the terminal state
	require.NotEmpty(t, evs)
	last := evs[len(evs)-1]
	require.False(t, last.isOutput())
	require.Equal(t, jobs.StatusSucceeded, last.upd.Status)
	require.Equal(t, 1.0, last.upd.Progress.Fraction)
	require.Equal(t, job.ID, last.upd.ID)

	require.Equal(t, seqRange(1, 6), outputSeqs(evs), "every segment once, in order, before the terminal state")
	var prev sseEvent
	for i, ev := range evs {
		if ev.isOutput() {
			requireSegment(t, ev.out.Seq, ev.out.Data)
			require.Equal(t, ev.out.Seq, ev.output, "an output event's ID carries its seq")
		} else {
			require.Greater(t, ev.state, prev.state, "state cursors increase")
			if i > 0 && ev.upd.Status == prev.upd.Status {
				require.GreaterOrEqual(t, ev.upd.Progress.Fraction, prev.upd.Progress.Fraction)
			}
		}
		require.GreaterOrEqual(t, ev.state, prev.state, "each ID carries both cursors")
		require.GreaterOrEqual(t, ev.output, prev.output)
		if !ev.isOutput() {
			prev.upd = ev.upd
		}
		prev.state, prev.output = ev.state, ev.output
	}
}

// A client that drops the stream and reconnects with Last-Event-ID, after
// an output event or after a state event, gets the rest: over three
// connections, every output item exactly once, and no state twice.
func TestSSEResumesAfterLastEventID(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{delay: 20 * time.Millisecond})
	job := e.createTranscription("tone:30s") // 60 segments, about 1.2 s
	var all []sseEvent

	// 1: until the third output item; the last event is an output event.
	res, done := e.openEvents(job.ID, "")
	first := readEvents(t, res.Body, func(ev sseEvent) bool { return ev.isOutput() && ev.out.Seq >= 3 })
	done()
	all = append(all, first...)
	last := first[len(first)-1]

	// 2: until a state event after at least one more output item.
	res, done = e.openEvents(job.ID, last.id)
	gotItem := false
	second := readEvents(t, res.Body, func(ev sseEvent) bool {
		gotItem = gotItem || ev.isOutput()
		return gotItem && !ev.isOutput()
	})
	done()
	require.NotEmpty(t, second)
	last = second[len(second)-1]
	require.False(t, last.isOutput())
	require.False(t, last.upd.Status.Terminal(), "the job is still running")
	all = append(all, second...)

	// 3: to the end.
	res, done = e.openEvents(job.ID, last.id)
	third := readEvents(t, res.Body, nil)
	done()
	all = append(all, third...)
	require.Equal(t, jobs.StatusSucceeded, all[len(all)-1].upd.Status)

	require.Equal(t, seqRange(1, 60), outputSeqs(all), "no gap, no repeat")
	for _, ev := range all {
		if ev.isOutput() {
			requireSegment(t, ev.out.Seq, ev.out.Data)
		}
	}
	var states []uint64
	for _, ev := range all {
		if !ev.isOutput() {
			states = append(states, ev.state)
		}
	}
	for i := 1; i < len(states); i++ {
		require.Greater(t, states[i], states[i-1], "no state the client already had")
	}

	// An ID from another server run resumes the output (its numbers are
	// stored with the job) but not the states: the client gets the items
	// after its cursor, then the current state.
	res, done = e.openEvents(job.ID, "otherboot.99999999.57")
	evs := readEvents(t, res.Body, nil)
	done()
	require.Equal(t, seqRange(58, 60), outputSeqs(evs))
	require.Len(t, evs, 4)
	require.Equal(t, jobs.StatusSucceeded, evs[3].upd.Status)

	// Garbage, or the IDs of an older version ("boot.seq"), resume nothing.
	for _, id := range []string{last.boot + ".99999999", "garbage", "x.1.-5", "x.1.+5", strings.Repeat("9", 5000)} {
		res, done = e.openEvents(job.ID, id)
		evs := readEvents(t, res.Body, nil)
		done()
		require.Equal(t, seqRange(1, 60), outputSeqs(evs), id)
		require.Len(t, evs, 61, id)
		require.Equal(t, jobs.StatusSucceeded, evs[60].upd.Status)
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

func TestParseEventID(t *testing.T) {
	t.Parallel()
	s := &server{bootID: "b0"}
	tests := []struct {
		id      string
		want    cursor
		sameRun bool
	}{
		{"b0.7.3", cursor{state: 7, output: 3}, true},
		{"b0.0.0", cursor{}, true},
		{"old.7.3", cursor{output: 3}, false},
		{"b0.7", cursor{}, false},
		{"b0.7.3.1", cursor{}, false},
		{"b0.x.3", cursor{}, false},
		{"b0.7.-3", cursor{}, false},
		{".7.3", cursor{}, false},
		{"", cursor{}, false},
		{fmt.Sprintf("b0.1.%d0", int64(1<<62)), cursor{}, false},
	}
	for _, tt := range tests {
		c, same := s.parseEventID(tt.id)
		require.Equal(t, tt.want, c, tt.id)
		require.Equal(t, tt.sameRun, same, tt.id)
		if same {
			require.Equal(t, tt.id, s.eventID(c), "IDs round-trip")
		}
	}
}
