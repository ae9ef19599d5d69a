package main

import (
	"compress/gzip"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// collector is a fake OTLP/HTTP collector that keeps what it receives.
type collector struct {
	mu      sync.Mutex
	spans   []*tracepb.Span
	metrics int // export requests to /v1/metrics
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	b, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch r.URL.Path {
	case "/v1/traces":
		var req collectortrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(b, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				c.spans = append(c.spans, ss.Spans...)
			}
		}
	case "/v1/metrics":
		c.metrics++
	default:
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

func (c *collector) span(t *testing.T, name string) *tracepb.Span {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var names []string
	for _, s := range c.spans {
		if s.Name == name {
			return s
		}
		names = append(names, s.Name)
	}
	t.Fatalf("no span %q among %q", name, names)
	return nil
}

// TestRunExportsTraces: with OTEL_EXPORTER_OTLP_ENDPOINT set, a request
// that creates a job exports its span, the enqueue span as its child and
// the attempt's span linked to the enqueue, and metrics; all of it is
// flushed at shutdown.
func TestRunExportsTraces(t *testing.T) {
	t.Parallel()
	col := &collector{}
	cs := httptest.NewServer(col)
	defer cs.Close()
	base, stop, code, stderr := startRun(t, map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": cs.URL,
		"APP_SEGMENT_DELAY":           "0s",
	})
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/api/transcribe",
		strings.NewReader(`{"audio_url":"tone:1s"}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01") // the client's span
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	job := decodeJob(t, mustRead(t, res))
	require.Eventually(t, func() bool {
		res, err := http.Get(base + "/api/jobs/" + job.ID.String())
		return err == nil && decodeJob(t, mustRead(t, res)).Status == jobs.StatusSucceeded
	}, 30*time.Second, 20*time.Millisecond)
	stop()
	require.Equal(t, exitOK, <-code, "stderr: %s", stderr.String())

	request := col.span(t, "POST /api/transcribe")
	require.Equal(t, tracepb.Span_SPAN_KIND_SERVER, request.Kind)
	require.Equal(t, "0af7651916cd43dd8448eb211c80319c", hex.EncodeToString(request.TraceId), "continues the client's trace")
	enqueue := col.span(t, "enqueue transcribe")
	require.Equal(t, request.SpanId, enqueue.ParentSpanId, "the enqueue is the request's child")
	process := col.span(t, "process transcribe")
	require.Len(t, process.Links, 1)
	require.Equal(t, enqueue.SpanId, process.Links[0].SpanId, "the attempt links to the enqueue")
	require.Equal(t, enqueue.TraceId, process.Links[0].TraceId)
	col.mu.Lock()
	defer col.mu.Unlock()
	require.Positive(t, col.metrics, "metrics are exported at shutdown at the latest")
}
