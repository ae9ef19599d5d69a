package main

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/rules"
	"github.com/stretchr/testify/require"
)

// dialWS opens the job's WebSocket with optional headers.
func (e *env) dialWS(id string, header http.Header) (*websocket.Conn, *http.Response, error) {
	ctx, cancel := context.WithTimeout(e.t.Context(), 10*time.Second)
	defer cancel()
	return websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.url, "http")+"/ws/jobs/"+id, &websocket.DialOptions{HTTPHeader: header})
}

// wsMessage is one WebSocket message: a state or an output item.
type wsMessage struct {
	typ string
	upd update        // a "state" message
	out outputMessage // an "output" message
}

// readWS reads messages until the connection closes, or until each returns
// false, and returns them with the close status (-1 when it did not close
// cleanly, 0 when each stopped the reading).
func readWS(t *testing.T, c *websocket.Conn, each func(wsMessage) bool) ([]wsMessage, websocket.StatusCode) {
	t.Helper()
	var out []wsMessage
	for {
		var raw map[string]json.RawMessage
		err := wsjson.Read(t.Context(), c, &raw)
		if err != nil {
			return out, websocket.CloseStatus(err)
		}
		var m wsMessage
		require.NoError(t, json.Unmarshal(raw["type"], &m.typ))
		b, _ := json.Marshal(raw)
		switch m.typ {
		case "state":
			for k := range raw {
				require.Contains(t, []string{"type", "id", "status", "progress", "attempt", "error"}, k)
			}
			require.NoError(t, json.Unmarshal(b, &m.upd))
		case "output":
			require.Len(t, raw, 3, "type, seq and data: %s", b)
			require.NoError(t, json.Unmarshal(b, &m.out))
		default:
			t.Fatalf("message of unknown type: %s", b)
		}
		out = append(out, m)
		if each != nil && !each(m) {
			return out, 0
		}
	}
}

// wsStates returns the state messages.
func wsStates(ms []wsMessage) []update {
	var ups []update
	for _, m := range ms {
		if m.typ == "state" {
			ups = append(ups, m.upd)
		}
	}
	return ups
}

// wsOutputSeqs returns the seq of each output message.
func wsOutputSeqs(ms []wsMessage) []int64 {
	var seqs []int64
	for _, m := range ms {
		if m.typ == "output" {
			seqs = append(seqs, m.out.Seq)
		}
	}
	return seqs
}

func TestWebSocketWatchesToCompletion(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{delay: 10 * time.Millisecond})
	job := e.createTranscription("tone:3s")
	c, res, err := e.dialWS(job.ID.String(), nil)
	require.NoError(t, err)
	defer c.CloseNow()
	require.Equal(t, http.StatusSwitchingProtocols, res.StatusCode)
	ms, status := readWS(t, c, nil)
	require.Equal(t, websocket.StatusNormalClosure, status)
	require.NotEmpty(t, ms)
	last := ms[len(ms)-1]
	require.Equal(t, "state", last.typ)
	require.Equal(t, jobs.StatusSucceeded, last.upd.Status)
	require.Equal(t, 1.0, last.upd.Progress.Fraction)
	require.Equal(t, "segment 6/6", last.upd.Progress.Message)
	require.Equal(t, seqRange(1, 6), wsOutputSeqs(ms), "every segment once, in order, before the terminal state")
	for _, m := range ms {
		if m.typ == "output" {
			requireSegment(t, m.out.Seq, m.out.Data)
		}
	}
}

// A client that reconnects with ?after= and the seq of the last output
// item it got gets the rest of the output: no gap, no repeat.
func TestWebSocketResumesAfter(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{delay: 20 * time.Millisecond})
	job := e.createTranscription("tone:20s") // 40 segments, about 0.8 s
	c, _, err := e.dialWS(job.ID.String(), nil)
	require.NoError(t, err)
	first, _ := readWS(t, c, func(m wsMessage) bool { return m.typ != "output" || m.out.Seq < 5 })
	c.CloseNow()
	require.Equal(t, seqRange(1, 5), wsOutputSeqs(first))
	for _, u := range wsStates(first) {
		require.False(t, u.Status.Terminal(), "the job is still running")
	}

	c, _, err = e.dialWS(job.ID.String()+"?after=5", nil)
	require.NoError(t, err)
	defer c.CloseNow()
	rest, status := readWS(t, c, nil)
	require.Equal(t, websocket.StatusNormalClosure, status)
	require.Equal(t, seqRange(6, 40), wsOutputSeqs(rest))
	for _, m := range rest {
		if m.typ == "output" {
			requireSegment(t, m.out.Seq, m.out.Data)
		}
	}
	require.Equal(t, jobs.StatusSucceeded, rest[len(rest)-1].upd.Status)

	// After the end: the items after the cursor, then the final state.
	c, _, err = e.dialWS(job.ID.String()+"?after=38", nil)
	require.NoError(t, err)
	defer c.CloseNow()
	tail, status := readWS(t, c, nil)
	require.Equal(t, websocket.StatusNormalClosure, status)
	require.Equal(t, []int64{39, 40}, wsOutputSeqs(tail))
	require.Len(t, tail, 3)
}

func TestWebSocketCancelMidway(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{delay: 20 * time.Millisecond})
	job := e.createTranscription("tone:60s") // 120 segments: 2.4 s
	c, _, err := e.dialWS(job.ID.String(), nil)
	require.NoError(t, err)
	defer c.CloseNow()
	canceled := false
	ms, status := readWS(t, c, func(m wsMessage) bool {
		if u := m.upd; !canceled && u.Status == jobs.StatusRunning && u.Progress.Fraction > 0 {
			canceled = true
			res, body := e.do("POST", "/api/jobs/"+job.ID.String()+"/cancel", "")
			require.Equal(t, http.StatusOK, res.StatusCode, "body: %s", body)
		}
		return true
	})
	require.Equal(t, websocket.StatusNormalClosure, status)
	ups := wsStates(ms)
	last := ups[len(ups)-1]
	require.Equal(t, jobs.StatusCanceled, last.Status)
	require.Less(t, last.Progress.Fraction, 0.5, "stopped mid-way")
	n := int64(len(wsOutputSeqs(ms)))
	require.Equal(t, seqRange(1, n), wsOutputSeqs(ms), "the segments done before the cancel, each once")

	res, body := e.do("GET", "/api/jobs/"+job.ID.String(), "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, jobs.StatusCanceled, decodeJob(t, body).Status)
	res, body = e.do("POST", "/api/jobs/"+job.ID.String()+"/cancel", "")
	requireError(t, res, body, http.StatusConflict, jobs.ErrConflict)
}

func TestWebSocketRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{noRun: true, origins: []string{"https://app.example"}})
	_, res, err := e.dialWS(uuid.NewString(), nil)
	require.Error(t, err)
	require.Equal(t, http.StatusNotFound, res.StatusCode, "unknown job: 404 before the upgrade")

	job := e.createTranscription("tone:1s")
	for _, after := range []string{"-1", "x", "+1", "1.5", "9223372036854775808"} {
		res, body := e.do("GET", "/ws/jobs/"+job.ID.String()+"?after="+after, "")
		eb := requireError(t, res, body, http.StatusBadRequest, jobs.ErrInvalidArgument)
		require.Equal(t, "after", eb.Details.Field, after)
	}
	_, res, err = e.dialWS(job.ID.String(), http.Header{"Origin": {"https://evil.example"}})
	require.Error(t, err)
	require.Equal(t, http.StatusForbidden, res.StatusCode, "cross-origin: 403 before the upgrade")

	for _, origin := range []string{e.url, "https://app.example"} {
		c, res, err := e.dialWS(job.ID.String(), http.Header{"Origin": {origin}})
		require.NoError(t, err, origin)
		require.Equal(t, http.StatusSwitchingProtocols, res.StatusCode)
		var m wsState
		require.NoError(t, wsjson.Read(t.Context(), c, &m))
		require.Equal(t, "state", m.Type)
		require.Equal(t, jobs.StatusPending, m.Status)
		c.CloseNow()
	}

	// http.CrossOriginProtection alone would let the upgrade through: it
	// never checks GET requests (SE-2), hence the check of our own.
	req := httptest.NewRequest("GET", "/ws/jobs/"+job.ID.String(), nil)
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	require.NoError(t, http.NewCrossOriginProtection().Check(req))
}

func TestWebSocketReadLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{noRun: true})
	job := e.createTranscription("tone:1s")
	for _, tc := range []struct {
		size int
		want websocket.StatusCode
	}{
		{wsReadLimit * 2, websocket.StatusMessageTooBig},
		{10, websocket.StatusPolicyViolation}, // clients are not expected to send
	} {
		c, _, err := e.dialWS(job.ID.String(), nil)
		require.NoError(t, err)
		var u update
		require.NoError(t, wsjson.Read(t.Context(), c, &u))
		require.NoError(t, c.Write(t.Context(), websocket.MessageText, make([]byte, tc.size)))
		_, _, err = c.Read(t.Context())
		require.Equal(t, tc.want, websocket.CloseStatus(err), "%v", err)
		c.CloseNow()
	}
}

// TestWebSocketSlowClientIsDropped: a client that stops reading fills the
// socket buffers; the server's write deadline then drops it, while the job
// runs to the end at its own pace.
func TestWebSocketSlowClientIsDropped(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", rules.MaxMessageLength-20)
	started := make(chan struct{})
	release := make(chan struct{})
	e := newEnv(t, envOptions{
		tweak: func(s *server) { s.writeTimeout = 200 * time.Millisecond },
		httpSrv: func(ts *httptest.Server) {
			ts.Config.ConnState = func(c net.Conn, st http.ConnState) {
				if tc, ok := c.(*net.TCPConn); ok && st == http.StateNew {
					_ = tc.SetWriteBuffer(4096)
				}
			}
		},
		kinds: func(r *jobs.Runner) {
			r.Handle("chatty", func(ctx context.Context, _ *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
				close(started)
				<-release
				tick := time.NewTicker(2 * time.Millisecond) // paced like real work
				defer tick.Stop()
				for i := range 500 {
					if err := p.Report(float64(i)/500, big[:len(big)-i%10]); err != nil {
						return nil, err
					}
					select {
					case <-tick.C:
					case <-ctx.Done():
						return nil, context.Cause(ctx)
					}
				}
				return json.RawMessage(`{}`), nil
			})
		},
	})
	res, body := e.do("POST", "/api/jobs", `{"kind":"chatty"}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, "body: %s", body)
	job := decodeJob(t, body)
	<-started

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(4096)
		}
		return c, err
	}}}
	defer client.CloseIdleConnections()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.url, "http")+"/ws/jobs/"+job.ID.String(), &websocket.DialOptions{HTTPClient: client})
	require.NoError(t, err)
	defer c.CloseNow()
	close(release) // the client reads nothing from now on

	final, err := e.runner.Await(ctx, job.ID)
	require.NoError(t, err)
	require.Equal(t, jobs.StatusSucceeded, final.Status, "the job is not slowed down")
	require.Eventually(t, func() bool { return len(e.srv.streams) == 0 }, 5*time.Second, 10*time.Millisecond,
		"the stream was dropped")

	var last update
	for {
		var u update
		if err := wsjson.Read(ctx, c, &u); err != nil {
			require.NotEqual(t, websocket.StatusNormalClosure, websocket.CloseStatus(err), "dropped, not closed normally")
			require.False(t, errors.Is(err, context.DeadlineExceeded))
			break
		}
		last = u
	}
	require.NotEqual(t, jobs.StatusSucceeded, last.Status, "the dropped client never got the end")
}
