package main

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

// TestStreamsOutliveServerTimeouts: SSE and WebSocket streams last longer
// than the http.Server's ReadTimeout and WriteTimeout.
func TestStreamsOutliveServerTimeouts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{delay: 20 * time.Millisecond, httpSrv: func(ts *httptest.Server) {
		ts.Config.ReadTimeout = 300 * time.Millisecond
		ts.Config.WriteTimeout = 300 * time.Millisecond
	}})
	sse := e.createTranscription("tone:40s") // 80 segments: 1.6 s
	ws := e.createTranscription("tone:40s")
	c, _, err := e.dialWS(ws.ID.String(), nil)
	require.NoError(t, err)
	defer c.CloseNow()
	res, done := e.openEvents(sse.ID, "")
	defer done()

	evs := readEvents(t, res.Body, nil)
	require.Equal(t, jobs.StatusSucceeded, evs[len(evs)-1].upd.Status)
	ms, status := readWS(t, c, nil)
	t.Logf("sse %d events, ws %d messages, status %v", len(evs), len(ms), status)
	require.Equal(t, websocket.StatusNormalClosure, status)
	require.Equal(t, jobs.StatusSucceeded, ms[len(ms)-1].upd.Status)
	require.Equal(t, seqRange(1, 80), outputSeqs(evs))
	require.Equal(t, seqRange(1, 80), wsOutputSeqs(ms))
}
