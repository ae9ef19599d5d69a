package main

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
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
		// Long enough for the POSTs under the race detector on a loaded
		// machine; the streams last three times as long.
		ts.Config.ReadTimeout = time.Second
		ts.Config.WriteTimeout = time.Second
	}})
	sse := e.createTranscription("tone:55s") // 110 segments: 2.2 s (under the 60 s of a chunk)
	ws := e.createTranscription("tone:55s")
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
	require.Equal(t, seqRange(1, 110), outputSeqs(evs))
	require.Equal(t, seqRange(1, 110), wsOutputSeqs(ms))
}

// TestProgressShapeEverywhere: GET of a job, the list, the SSE stream and
// the WebSocket all carry progress as {"fraction": …, "message": …}, and
// none has a progress message outside it.
func TestProgressShapeEverywhere(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	job := e.createTranscription("tone:2s")
	res, done := e.openEvents(job.ID, "")
	defer done()
	var sse []string
	for _, ev := range readEvents(t, res.Body, nil) {
		if !ev.isOutput() {
			sse = append(sse, ev.data)
		}
	}
	c, _, err := e.dialWS(job.ID.String(), nil)
	require.NoError(t, err)
	defer c.CloseNow()
	var ws []string
	for {
		_, b, err := c.Read(t.Context())
		if err != nil {
			break
		}
		if strings.Contains(string(b), `"type":"state"`) {
			ws = append(ws, string(b))
		}
	}
	_, one := e.do("GET", "/api/jobs/"+job.ID.String(), "")
	_, list := e.do("GET", "/api/jobs", "")
	var page struct{ Jobs []json.RawMessage }
	require.NoError(t, json.Unmarshal(list, &page))
	require.Len(t, page.Jobs, 1)

	check := func(where, doc string) {
		var v struct {
			Message  *string                    `json:"message"`
			Progress map[string]json.RawMessage `json:"progress"`
		}
		require.NoError(t, json.Unmarshal([]byte(doc), &v), "%s: %s", where, doc)
		require.Nil(t, v.Message, "%s: no message outside progress: %s", where, doc)
		require.Contains(t, v.Progress, "fraction", "%s: %s", where, doc)
		for k := range v.Progress {
			require.Contains(t, []string{"fraction", "message"}, k, "%s: %s", where, doc)
		}
	}
	require.NotEmpty(t, sse)
	require.NotEmpty(t, ws)
	for _, d := range sse {
		check("sse", d)
	}
	for _, d := range ws {
		check("websocket", d)
	}
	check("get", string(one))
	check("list", string(page.Jobs[0]))
	require.Contains(t, string(one), `"progress":{"fraction":1,"message":"segment 4/4"}`)
	require.Contains(t, sse[len(sse)-1], `"progress":{"fraction":1,"message":"segment 4/4"}`)
	require.Contains(t, ws[len(ws)-1], `"progress":{"fraction":1,"message":"segment 4/4"}`)
}
