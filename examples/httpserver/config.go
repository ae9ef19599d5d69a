package main

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/examples/internal/transcribe"
)

// Config is the server's configuration, read from APP_* environment
// variables (and OTEL_EXPORTER_OTLP_ENDPOINT) by [loadConfig].
type Config struct {
	// DatabaseURL is an SQLite file path (optionally "sqlite:" or "file:"
	// prefixed) or a postgres:// URL. APP_DATABASE_URL, default data/jobs.db.
	DatabaseURL string
	// Addr is the listen address. APP_ADDR, default 127.0.0.1:8080.
	Addr string
	// Concurrency is how many jobs run at once. APP_CONCURRENCY, default 4.
	Concurrency int
	// AuthToken, when set, is required as "Authorization: Bearer …" (or the
	// dashboard's cookie) on every API route. APP_AUTH_TOKEN, at least 16
	// characters.
	AuthToken string
	// InsecureNoAuth allows a non-loopback Addr without AuthToken.
	// APP_INSECURE_NO_AUTH=true; meant for containers behind a proxy.
	InsecureNoAuth bool
	// AllowedOrigins lists extra origins (scheme://host[:port]) whose pages
	// may call the API and open WebSockets, besides the server's own.
	// APP_ALLOWED_ORIGINS, comma separated.
	AllowedOrigins []string
	// AudioDir holds the WAV files that "file:" audio URLs name.
	// APP_AUDIO_DIR, default data/audio.
	AudioDir string
	// SegmentDelay is the stand-in model's pause per half second of audio.
	// APP_SEGMENT_DELAY, default 250ms (a 20 s tone takes 10 s), 0 to 10s.
	SegmentDelay time.Duration
	// CheckpointInterval is the least time between two checkpoints of a
	// transcription (see transcribe.Options): a restarted or crashed job
	// redoes at most this much work. APP_CHECKPOINT_INTERVAL, default 2s,
	// 0 (after every segment) to 1h.
	CheckpointInterval time.Duration
	// GracePeriod is how long a shutdown waits for running jobs before it
	// hands them back to pending for the next start. APP_GRACE_PERIOD,
	// default 10s, 0 to 5m.
	GracePeriod time.Duration
	// LeaseDuration is how long a job stays claimed without a heartbeat
	// (jobs.WithLeaseDuration): the jobs of a server that died run again,
	// here or on another server, within about 1.5 times this.
	// APP_LEASE_DURATION, default 30s, 1s to 1h.
	LeaseDuration time.Duration
	// OTLPEndpoint, when set, turns on tracing and metrics: spans and
	// metrics go to this OTLP/HTTP collector (see telemetry.go).
	// OTEL_EXPORTER_OTLP_ENDPOINT, an http:// or https:// URL, read as the
	// OpenTelemetry exporters read it.
	OTLPEndpoint string
	// UserConcurrency is how many transcriptions of one user (the "user"
	// of POST /api/transcribe, the job's concurrency key) run at once,
	// counted across every server process on the database.
	// APP_USER_CONCURRENCY, default 1, 1 to 2147483647.
	UserConcurrency int
	// ChunkSeconds is the length of the chunks a long recording is cut
	// into: POST /api/transcribe of audio longer than this creates one
	// job per chunk, run in parallel, and a merge that joins them (see
	// chunk.go). APP_CHUNK_SECONDS, default 60, 0 (never cut) to 86400.
	ChunkSeconds int
	// TranscribeSlots is how many transcriptions run at once in all, over
	// every user and every server process (the GPUs of the cluster).
	// APP_TRANSCRIBE_SLOTS, default 0: no limit beyond each process's
	// APP_CONCURRENCY; 0 to 2147483647.
	TranscribeSlots int
}

// transcribeLimit is the limit every server process declares for the
// transcription kind: each must declare the same, so all processes on one
// database need the same APP_USER_CONCURRENCY and APP_TRANSCRIBE_SLOTS.
func (c Config) transcribeLimit() jobs.Limit {
	return jobs.Limit{PerKey: c.UserConcurrency, Running: c.TranscribeSlots}
}

// Config defaults.
const (
	defaultDatabaseURL  = "data/jobs.db"
	defaultAddr         = "127.0.0.1:8080"
	defaultConcurrency  = 4
	defaultAudioDir     = "data/audio"
	defaultSegmentDelay = 250 * time.Millisecond
	minTokenLength      = 16
	maxSegmentDelay     = 10 * time.Second
	maxGracePeriod      = 5 * time.Minute
	defaultGracePeriod  = 10 * time.Second // as jobs.WithShutdown's
	maxConcurrency      = 10000            // jobs.WithConcurrency's limit
	maxCheckpoint       = time.Hour
	defaultLease        = 30 * time.Second // as jobs.WithLeaseDuration's
	minLease            = time.Second      // jobs.WithLeaseDuration's limit
	maxLease            = time.Hour        // heartbeats renew it: longer only delays a rescue
	defaultUserLimit    = 1
	defaultChunkSeconds = 60
	maxChunkSeconds     = 86400         // a day: beyond it, chunks no longer help
	maxLimit            = math.MaxInt32 // jobs.Limit's bound
)

// loadConfig reads the configuration through getenv (os.Getenv in main).
// It returns every problem found, joined, each naming its variable.
func loadConfig(getenv func(string) string) (Config, error) {
	c := Config{
		DatabaseURL:        or(getenv("APP_DATABASE_URL"), defaultDatabaseURL),
		Addr:               or(getenv("APP_ADDR"), defaultAddr),
		Concurrency:        defaultConcurrency,
		AuthToken:          getenv("APP_AUTH_TOKEN"),
		AudioDir:           or(getenv("APP_AUDIO_DIR"), defaultAudioDir),
		SegmentDelay:       defaultSegmentDelay,
		CheckpointInterval: transcribe.DefaultCheckpointInterval,
		GracePeriod:        defaultGracePeriod,
		LeaseDuration:      defaultLease,
		UserConcurrency:    defaultUserLimit,
		ChunkSeconds:       defaultChunkSeconds,
	}
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}
	if v := getenv("APP_CONCURRENCY"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxConcurrency {
			bad("APP_CONCURRENCY", "%q is not a whole number from 1 to %d", v, maxConcurrency)
		}
		c.Concurrency = n
	}
	if v := getenv("APP_USER_CONCURRENCY"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			bad("APP_USER_CONCURRENCY", "%q is not a whole number from 1 to %d", v, maxLimit)
		}
		c.UserConcurrency = n
	}
	if v := getenv("APP_TRANSCRIBE_SLOTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > maxLimit {
			bad("APP_TRANSCRIBE_SLOTS", "%q is not a whole number from 0 (no limit) to %d", v, maxLimit)
		}
		c.TranscribeSlots = n
	}
	if v := getenv("APP_CHUNK_SECONDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > maxChunkSeconds {
			bad("APP_CHUNK_SECONDS", "%q is not a whole number from 0 (never cut) to %d", v, maxChunkSeconds)
		}
		c.ChunkSeconds = n
	}
	if v := getenv("APP_SEGMENT_DELAY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > maxSegmentDelay {
			bad("APP_SEGMENT_DELAY", "%q is not a duration from 0s to %v (such as 250ms)", v, maxSegmentDelay)
		}
		c.SegmentDelay = d
	}
	if v := getenv("APP_CHECKPOINT_INTERVAL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > maxCheckpoint {
			bad("APP_CHECKPOINT_INTERVAL", "%q is not a duration from 0s to %v (such as 2s)", v, maxCheckpoint)
		}
		c.CheckpointInterval = d
	}
	if v := getenv("APP_GRACE_PERIOD"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > maxGracePeriod {
			bad("APP_GRACE_PERIOD", "%q is not a duration from 0s to %v (such as 10s)", v, maxGracePeriod)
		}
		c.GracePeriod = d
	}
	if v := getenv("APP_LEASE_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < minLease || d > maxLease {
			bad("APP_LEASE_DURATION", "%q is not a duration from %v to %v (such as 30s)", v, minLease, maxLease)
		}
		c.LeaseDuration = d
	}
	if v := getenv("APP_INSECURE_NO_AUTH"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			bad("APP_INSECURE_NO_AUTH", "%q is not true or false", v)
		}
		c.InsecureNoAuth = b
	}
	if v := getenv("OTEL_EXPORTER_OTLP_ENDPOINT"); v != "" {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("OTEL_EXPORTER_OTLP_ENDPOINT", "%q is not a URL such as http://localhost:4318", v)
		}
		c.OTLPEndpoint = v
	}
	if _, err := parseDatabaseURL(c.DatabaseURL); err != nil {
		bad("APP_DATABASE_URL", "%v", err)
	}
	loopback, err := checkAddr(c.Addr)
	if err != nil {
		bad("APP_ADDR", "%v", err)
	}
	switch {
	case c.AuthToken != "" && (len(c.AuthToken) < minTokenLength || strings.ContainsFunc(c.AuthToken, func(r rune) bool { return r <= ' ' || r >= 0x7f })):
		bad("APP_AUTH_TOKEN", "must be at least %d printable ASCII characters without spaces", minTokenLength)
	case err == nil && !loopback && c.AuthToken == "" && !c.InsecureNoAuth:
		bad("APP_ADDR", "%q is not a loopback address: set APP_AUTH_TOKEN (or APP_INSECURE_NO_AUTH=true to serve without authentication)", c.Addr)
	}
	for o := range strings.SplitSeq(getenv("APP_ALLOWED_ORIGINS"), ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			bad("APP_ALLOWED_ORIGINS", "%q is not an origin such as https://app.example.com", o)
			continue
		}
		c.AllowedOrigins = append(c.AllowedOrigins, u.Scheme+"://"+u.Host)
	}
	return c, errors.Join(errs...)
}

// database is a parsed APP_DATABASE_URL.
type database struct {
	postgres bool
	target   string // the postgres URL or the SQLite file path
}

// parseDatabaseURL tells PostgreSQL URLs from SQLite paths.
func parseDatabaseURL(s string) (database, error) {
	lower := strings.ToLower(s)
	switch {
	case strings.HasPrefix(lower, "postgres://"), strings.HasPrefix(lower, "postgresql://"):
		if _, err := url.Parse(s); err != nil {
			return database{}, errors.New("malformed postgres URL")
		}
		return database{postgres: true, target: s}, nil
	case strings.HasPrefix(lower, "sqlite:"):
		s = s[len("sqlite:"):]
	case strings.HasPrefix(lower, "file:"):
		s = s[len("file:"):]
	case strings.Contains(s, "://"):
		return database{}, errors.New("only postgres:// URLs and SQLite file paths are supported")
	}
	s = strings.TrimPrefix(s, "//")
	if strings.TrimSpace(s) == "" || strings.ContainsAny(s, "?#\x00") || s == ":memory:" {
		return database{}, fmt.Errorf("%q is not an SQLite file path such as data/jobs.db", s)
	}
	return database{target: s}, nil
}

// checkAddr validates a listen address and reports whether it is loopback
// only. A host name other than localhost counts as non-loopback.
func checkAddr(addr string) (loopback bool, err error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false, fmt.Errorf("%q is not host:port", addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return false, fmt.Errorf("%q has no valid port", addr)
	}
	if strings.EqualFold(host, "localhost") {
		return true, nil
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback(), nil
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
