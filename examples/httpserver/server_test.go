package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/examples/internal/transcribe"
	"github.com/jobsmith/jobs/jobsqlite"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testToken is the APP_AUTH_TOKEN of tests that need one.
const testToken = "test-token-0123456789abcdef"

// envOptions tune newEnv.
type envOptions struct {
	token   string
	origins []string
	noRun   bool                                        // do not start the runner: jobs stay pending
	wrap    func(jobs.JobRepository) jobs.JobRepository // wraps the SQLite repository
	delay   time.Duration                               // per segment; default 5ms
	tweak   func(*server)
	kinds   func(*jobs.Runner)     // registers extra handlers
	httpSrv func(*httptest.Server) // changes the test server before it starts
	limit   jobs.Limit             // of the transcription kind, as main.go declares it
	workers int                    // the runner's concurrency; default 4
	db      string                 // the SQLite file; default a new one
	chunk   int                    // APP_CHUNK_SECONDS; default 0, never cut
}

// env is a server on httptest with its own SQLite database and runner.
type env struct {
	t      testing.TB
	url    string
	srv    *server
	runner *jobs.Runner
	repo   *countingRepo
	// audioDir is the server's APP_AUDIO_DIR, empty at first.
	audioDir string
	// shutdown begins the server's shutdown: open streams end.
	shutdown context.CancelFunc
}

// newEnv starts a server; everything stops when the test ends.
func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	ctx := context.Background()
	if o.db == "" {
		o.db = filepath.Join(t.TempDir(), "jobs.db")
	}
	if o.workers == 0 {
		o.workers = 4
	}
	bun, err := jobsqlite.Open(ctx, o.db)
	require.NoError(t, err)
	var inner jobs.JobRepository = bun
	if o.wrap != nil {
		inner = o.wrap(inner)
	}
	repo := &countingRepo{JobRepository: inner}
	runner, err := jobs.NewRunner(repo, jobs.WithConcurrency(o.workers), jobs.WithPollInterval(50*time.Millisecond),
		jobs.WithShutdown(time.Nanosecond, 0), jobs.WithProgressInterval(20*time.Millisecond))
	require.NoError(t, err)
	if o.delay == 0 {
		o.delay = 5 * time.Millisecond
	}
	// A checkpoint after every segment: the output streams segment by segment.
	audioDir := t.TempDir()
	transcribe.Register(runner, audioDir, transcribe.Options{Delay: o.delay, CheckpointInterval: time.Nanosecond},
		jobs.WithLimit(o.limit))
	runner.Handle("echo", func(_ context.Context, j *jobs.Job, _ jobs.Reporter) (json.RawMessage, error) {
		return j.Payload, nil
	})
	if o.kinds != nil {
		o.kinds(runner)
	}
	cfg := Config{AuthToken: o.token, AllowedOrigins: o.origins, Concurrency: o.workers, AudioDir: audioDir, ChunkSeconds: o.chunk}
	shutdown, beginShutdown := context.WithCancel(ctx)
	srv := newServer(shutdown, cfg, runner, slog.New(slog.DiscardHandler))
	if o.tweak != nil {
		o.tweak(srv)
	}
	ts := httptest.NewUnstartedServer(srv)
	if o.httpSrv != nil {
		o.httpSrv(ts)
	}
	ts.Start()

	runCtx, stopRunner := context.WithCancel(ctx)
	runDone := make(chan error, 1)
	if o.noRun {
		runDone <- nil
	} else {
		go func() { runDone <- runner.Run(runCtx) }()
	}
	t.Cleanup(func() {
		beginShutdown()
		ts.Close()
		stopRunner()
		require.NoError(t, <-runDone)
		require.NoError(t, bun.Close())
	})
	return &env{t: t, url: ts.URL, srv: srv, runner: runner, repo: repo, audioDir: audioDir, shutdown: beginShutdown}
}

// do sends a request and returns the response with its body read.
func (e *env) do(method, path, body string, header ...string) (*http.Response, []byte) {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.t.Context(), method, e.url+path, strings.NewReader(body))
	require.NoError(e.t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(e.t, err)
	return res, b
}

// leak matches text that must never reach a client.
var leak = regexp.MustCompile(`(?i)sqlite|pq:|sqlstate|pgx|goroutine|\.go:|/home/|/tmp/|panic`)

// requireError checks an error response: status, JSON body with code and
// details.status_code, and nothing internal in it.
func requireError(t *testing.T, res *http.Response, body []byte, status int, code jobs.Code) errorBody {
	t.Helper()
	require.Equal(t, status, res.StatusCode, "body: %s", body)
	require.Equal(t, "application/json; charset=utf-8", res.Header.Get("Content-Type"))
	var eb errorBody
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&eb), "body: %s", body)
	require.Equal(t, code, eb.Code)
	require.Equal(t, status, eb.Details.StatusCode)
	require.NotEmpty(t, eb.Message)
	require.False(t, leak.Match(body), "leaks internals: %s", body)
	return eb
}

// decodeJob parses a job response.
func decodeJob(t testing.TB, body []byte) *jobs.Job {
	t.Helper()
	var j jobs.Job
	require.NoError(t, json.Unmarshal(body, &j), "body: %s", body)
	require.NotEqual(t, uuid.Nil, j.ID)
	return &j
}

// createTranscription posts a transcription and returns the job.
func (e *env) createTranscription(audio string) *jobs.Job {
	e.t.Helper()
	res, body := e.do("POST", "/api/transcribe", `{"audio_url":"`+audio+`","language":"en"}`, "Authorization", "Bearer "+testToken)
	require.Equal(e.t, http.StatusCreated, res.StatusCode, "body: %s", body)
	return decodeJob(e.t, body)
}

// countingRepo counts the repository reads and writes the HTTP layer makes.
type countingRepo struct {
	jobs.JobRepository
	calls atomic.Int64
}

func (c *countingRepo) Get(ctx context.Context, id uuid.UUID) (*jobs.Job, error) {
	c.calls.Add(1)
	return c.JobRepository.Get(ctx, id)
}

func (c *countingRepo) RequestCancel(ctx context.Context, id uuid.UUID) (*jobs.Job, error) {
	c.calls.Add(1)
	return c.JobRepository.RequestCancel(ctx, id)
}

func TestUnroutedAnswersJSON(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{noRun: true})
	id := uuid.NewString()
	tests := []struct {
		method, path string
		status       int
		code         jobs.Code
		allow        string
	}{
		{"DELETE", "/api/jobs/" + id, 405, codeMethodNotAllowed, "GET, HEAD"},
		{"PUT", "/api/jobs", 405, codeMethodNotAllowed, "GET, HEAD, POST"},
		{"GET", "/api/transcribe", 405, codeMethodNotAllowed, "POST"},
		{"GET", "/api/jobs/" + id + "/cancel", 405, codeMethodNotAllowed, "POST"},
		{"POST", "/healthz", 405, codeMethodNotAllowed, "GET, HEAD"},
		{"GET", "/nope", 404, codeRouteNotFound, ""},
		{"GET", "/api/jobs/" + id + "/nope", 404, codeRouteNotFound, ""},
	}
	for _, tt := range tests {
		res, body := e.do(tt.method, tt.path, "")
		requireError(t, res, body, tt.status, tt.code)
		require.Equal(t, tt.allow, res.Header.Get("Allow"), "%s %s", tt.method, tt.path)
	}
}

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{noRun: true})
	res, _ := e.do("GET", "/healthz", "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"))
	require.Equal(t, "DENY", res.Header.Get("X-Frame-Options"))
	require.Empty(t, res.Header.Get("Access-Control-Allow-Origin"), "no CORS at all")

	req, err := http.NewRequestWithContext(t.Context(), "OPTIONS", e.url+"/api/transcribe", nil)
	require.NoError(t, err)
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	res, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Empty(t, res.Header.Get("Access-Control-Allow-Origin"), "a preflight gets no ACAO")
}

func TestStreamLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{noRun: true})
	for range cap(e.srv.streams) {
		e.srv.streams <- struct{}{}
	}
	job := e.createTranscription("tone:1s")
	res, body := e.do("GET", "/api/jobs/"+job.ID.String()+"/events", "")
	requireError(t, res, body, http.StatusTooManyRequests, codeTooManyRequests)
	require.Equal(t, "1", res.Header.Get("Retry-After"))
	res, body = e.do("GET", "/ws/jobs/"+job.ID.String(), "")
	requireError(t, res, body, http.StatusTooManyRequests, codeTooManyRequests)
}
