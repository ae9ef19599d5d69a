package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/jobsmith/jobs"
)

// Stream limits and timings; tests shorten some of them.
const (
	defaultMaxStreams   = 64               // concurrent SSE + WebSocket streams
	defaultWriteTimeout = 10 * time.Second // per event written to a stream
	defaultKeepAlive    = 20 * time.Second // SSE comment / WebSocket ping interval
	wsReadLimit         = 4 << 10          // bytes of one incoming WebSocket message
	authCookie          = "jobs_token"
)

// server is the HTTP adapter in front of a [jobs.Runner]. It is an
// http.Handler, safe for concurrent use.
type server struct {
	runner *jobs.Runner
	cfg    Config
	log    *slog.Logger
	mux    *http.ServeMux
	next   http.Handler // the whole chain, CrossOriginProtection outermost

	tokenHash [sha256.Size]byte // of cfg.AuthToken, compared in constant time

	bootID       string          // prefix of SSE event IDs, unique per run
	streams      chan struct{}   // semaphore of open streams
	shutdown     context.Context // done when the server shuts down: streams end
	writeTimeout time.Duration
	keepAlive    time.Duration
}

// newServer builds the handler. Streams end when shutdown is done.
func newServer(shutdown context.Context, cfg Config, r *jobs.Runner, log *slog.Logger) *server {
	s := &server{
		runner:       r,
		cfg:          cfg,
		log:          log,
		mux:          http.NewServeMux(),
		tokenHash:    sha256.Sum256([]byte(cfg.AuthToken)),
		bootID:       strconv.FormatInt(time.Now().UnixNano(), 36),
		streams:      make(chan struct{}, defaultMaxStreams),
		shutdown:     shutdown,
		writeTimeout: defaultWriteTimeout,
		keepAlive:    defaultKeepAlive,
	}
	s.routes()
	cop := http.NewCrossOriginProtection()
	for _, o := range cfg.AllowedOrigins {
		_ = cop.AddTrustedOrigin(o) // validated by loadConfig
	}
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, httpError(codeForbidden, "cross-origin request refused"))
	}))
	s.next = cop.Handler(http.HandlerFunc(s.route))
	return s
}

// publicRoutes need no token: the dashboard shell (static files holding no
// data, which asks for the token itself) and the login that sets the
// cookie.
var publicRoutes = map[string]bool{
	"GET /{$}":         true,
	"GET /static/":     true,
	"POST /api/login":  true,
	"POST /api/logout": true,
}

// route is one entry of the route table: a ServeMux pattern and its
// handler.
type route struct {
	pattern string
	handler http.HandlerFunc
}

// routeTable lists every route; usage.txt documents each of them.
func (s *server) routeTable() []route {
	return []route{
		{"GET /{$}", s.dashboard},
		{"GET /static/", s.static},
		{"POST /api/login", s.login},
		{"POST /api/logout", s.logout},
		{"GET /healthz", s.healthz},
		{"POST /api/transcribe", s.createTranscription},
		{"POST /api/jobs", s.createJob},
		{"GET /api/jobs", s.listJobs},
		{"GET /api/jobs/{id}", s.getJob},
		{"POST /api/jobs/{id}/cancel", s.cancelJob},
		{"POST /api/jobs/{id}/retry", s.retryJob},
		{"GET /api/jobs/{id}/events", s.events},
		{"GET /ws/jobs/{id}", s.websocket},
		{"GET /api/queues", s.listQueues},
		{"POST /api/queues/{name}/pause", s.pauseQueue},
		{"POST /api/queues/{name}/resume", s.resumeQueue},
		{"GET /api/schedules", s.listSchedules},
	}
}

func (s *server) routes() {
	for _, r := range s.routeTable() {
		s.mux.HandleFunc(r.pattern, r.handler)
	}
}

// ServeHTTP serves a request through CrossOriginProtection, then auth, then
// the routes.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	s.next.ServeHTTP(w, r)
}

// route checks authentication and dispatches. Requests that match no route
// get the mux's own answer (404, or 405 with Allow) as a JSON error.
func (s *server) route(w http.ResponseWriter, r *http.Request) {
	h, pattern := s.mux.Handler(r)
	if !publicRoutes[pattern] && !s.authorized(r) {
		s.fail(w, r, httpError(codeUnauthorized, ""))
		return
	}
	if pattern != "" {
		s.mux.ServeHTTP(w, r)
		return
	}
	rec := &recorder{header: http.Header{}, code: http.StatusOK} // the mux's 404/405/redirect, to translate
	h.ServeHTTP(rec, r)
	switch rec.code {
	case http.StatusNotFound:
		s.fail(w, r, httpError(codeRouteNotFound, ""))
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", rec.header.Get("Allow"))
		s.fail(w, r, httpError(codeMethodNotAllowed, ""))
	default: // a redirect to the cleaned path
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.code)
		_, _ = w.Write(rec.body.Bytes())
	}
}

// acquireStream takes a stream slot; false when all are taken.
func (s *server) acquireStream() (release func(), ok bool) {
	select {
	case s.streams <- struct{}{}:
		return func() { <-s.streams }, true
	default:
		return nil, false
	}
}

// streamContext is r's context, also canceled when the server shuts down.
func (s *server) streamContext(r *http.Request) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(r.Context())
	stop := context.AfterFunc(s.shutdown, cancel)
	return ctx, func() { stop(); cancel() }
}

// recorder keeps a response in memory.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) WriteHeader(code int)        { r.code = code }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }

func (s *server) fail(w http.ResponseWriter, r *http.Request, err error) {
	writeError(w, r, s.log, err)
}
