package main

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

func getenv(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadConfigDefaults(t *testing.T) {
	t.Parallel()
	c, err := loadConfig(getenv(nil))
	require.NoError(t, err)
	require.Equal(t, Config{
		DatabaseURL:        "data/jobs.db",
		Addr:               "127.0.0.1:8080",
		Concurrency:        4,
		AudioDir:           "data/audio",
		SegmentDelay:       250 * time.Millisecond,
		CheckpointInterval: 2 * time.Second,
		GracePeriod:        10 * time.Second,
		LeaseDuration:      30 * time.Second,
		UserConcurrency:    1,
		ChunkSeconds:       60,
	}, c)
	require.Equal(t, jobs.Limit{PerKey: 1}, c.transcribeLimit(), "one per user, no limit in all")
}

func TestLoadConfigValues(t *testing.T) {
	t.Parallel()
	c, err := loadConfig(getenv(map[string]string{
		"APP_DATABASE_URL":        "postgres://u@db/jobs?sslmode=disable",
		"APP_ADDR":                "0.0.0.0:9000",
		"APP_CONCURRENCY":         "16",
		"APP_AUTH_TOKEN":          testToken,
		"APP_AUDIO_DIR":           "/srv/audio",
		"APP_SEGMENT_DELAY":       "0s",
		"APP_CHECKPOINT_INTERVAL": "0s",
		"APP_LEASE_DURATION":      "1s",
		"APP_ALLOWED_ORIGINS":     " https://a.example , http://b.example:8080/ ",
		"APP_USER_CONCURRENCY":    "2",
		"APP_TRANSCRIBE_SLOTS":    "6",
		"APP_CHUNK_SECONDS":       "86400",
	}))
	require.NoError(t, err)
	require.Equal(t, 86400, c.ChunkSeconds)
	require.Equal(t, jobs.Limit{PerKey: 2, Running: 6}, c.transcribeLimit())
	require.Equal(t, 16, c.Concurrency)
	require.Equal(t, time.Duration(0), c.SegmentDelay)
	require.Equal(t, time.Duration(0), c.CheckpointInterval)
	require.Equal(t, time.Second, c.LeaseDuration, "the least lease")
	require.Equal(t, []string{"https://a.example", "http://b.example:8080"}, c.AllowedOrigins)

	c, err = loadConfig(getenv(map[string]string{"APP_TRANSCRIBE_SLOTS": "0", "APP_USER_CONCURRENCY": "2147483647", "APP_CHUNK_SECONDS": "0"}))
	require.NoError(t, err)
	require.Zero(t, c.ChunkSeconds, "0: never cut")
	require.Equal(t, jobs.Limit{PerKey: math.MaxInt32}, c.transcribeLimit(), "0 slots: no limit in all")

	c, err = loadConfig(getenv(map[string]string{"APP_ADDR": "0.0.0.0:9000", "APP_INSECURE_NO_AUTH": "true"}))
	require.NoError(t, err, "the explicit insecure flag allows no token")
	require.True(t, c.InsecureNoAuth)
	for _, addr := range []string{"localhost:1", "[::1]:8080", "127.0.0.2:0"} {
		_, err := loadConfig(getenv(map[string]string{"APP_ADDR": addr}))
		require.NoError(t, err, addr)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"APP_CONCURRENCY": "zero"}, "APP_CONCURRENCY"},
		{map[string]string{"APP_CONCURRENCY": "0"}, "APP_CONCURRENCY"},
		{map[string]string{"APP_CONCURRENCY": "100000"}, "APP_CONCURRENCY"},
		{map[string]string{"APP_SEGMENT_DELAY": "fast"}, "APP_SEGMENT_DELAY"},
		{map[string]string{"APP_SEGMENT_DELAY": "-1s"}, "APP_SEGMENT_DELAY"},
		{map[string]string{"APP_SEGMENT_DELAY": "1h"}, "APP_SEGMENT_DELAY"},
		{map[string]string{"APP_GRACE_PERIOD": "1d"}, "APP_GRACE_PERIOD"},
		{map[string]string{"APP_GRACE_PERIOD": "1h"}, "APP_GRACE_PERIOD"},
		{map[string]string{"APP_CHECKPOINT_INTERVAL": "often"}, "APP_CHECKPOINT_INTERVAL"},
		{map[string]string{"APP_CHECKPOINT_INTERVAL": "-1s"}, "APP_CHECKPOINT_INTERVAL"},
		{map[string]string{"APP_CHECKPOINT_INTERVAL": "2h"}, "APP_CHECKPOINT_INTERVAL"},
		{map[string]string{"APP_LEASE_DURATION": "30"}, "APP_LEASE_DURATION"},
		{map[string]string{"APP_LEASE_DURATION": "999ms"}, "APP_LEASE_DURATION: \"999ms\" is not a duration from 1s to 1h0m0s"},
		{map[string]string{"APP_LEASE_DURATION": "0s"}, "APP_LEASE_DURATION"},
		{map[string]string{"APP_LEASE_DURATION": "-30s"}, "APP_LEASE_DURATION"},
		{map[string]string{"APP_LEASE_DURATION": "2h"}, "APP_LEASE_DURATION"},
		{map[string]string{"APP_USER_CONCURRENCY": "0"}, `APP_USER_CONCURRENCY: "0" is not a whole number from 1 to 2147483647`},
		{map[string]string{"APP_USER_CONCURRENCY": "-1"}, "APP_USER_CONCURRENCY"},
		{map[string]string{"APP_USER_CONCURRENCY": "one"}, "APP_USER_CONCURRENCY"},
		{map[string]string{"APP_USER_CONCURRENCY": "1.5"}, "APP_USER_CONCURRENCY"},
		{map[string]string{"APP_USER_CONCURRENCY": "2147483648"}, "APP_USER_CONCURRENCY"},
		{map[string]string{"APP_TRANSCRIBE_SLOTS": "-1"}, `APP_TRANSCRIBE_SLOTS: "-1" is not a whole number from 0 (no limit) to 2147483647`},
		{map[string]string{"APP_TRANSCRIBE_SLOTS": "unlimited"}, "APP_TRANSCRIBE_SLOTS"},
		{map[string]string{"APP_TRANSCRIBE_SLOTS": " 2"}, "APP_TRANSCRIBE_SLOTS"},
		{map[string]string{"APP_TRANSCRIBE_SLOTS": "99999999999"}, "APP_TRANSCRIBE_SLOTS"},
		{map[string]string{"APP_CHUNK_SECONDS": "-1"}, `APP_CHUNK_SECONDS: "-1" is not a whole number from 0 (never cut) to 86400`},
		{map[string]string{"APP_CHUNK_SECONDS": "86401"}, "APP_CHUNK_SECONDS"},
		{map[string]string{"APP_CHUNK_SECONDS": "1m"}, "APP_CHUNK_SECONDS"},
		{map[string]string{"APP_CHUNK_SECONDS": "1.5"}, "APP_CHUNK_SECONDS"},
		{map[string]string{"APP_ADDR": "8080"}, "APP_ADDR"},
		{map[string]string{"APP_ADDR": "127.0.0.1:99999"}, "APP_ADDR"},
		{map[string]string{"APP_ADDR": ":8080"}, "not a loopback address"},
		{map[string]string{"APP_ADDR": "0.0.0.0:8080"}, "set APP_AUTH_TOKEN"},
		{map[string]string{"APP_ADDR": "example.com:80"}, "not a loopback address"},
		{map[string]string{"APP_AUTH_TOKEN": "short"}, "APP_AUTH_TOKEN"},
		{map[string]string{"APP_AUTH_TOKEN": "has spaces in the token value"}, "APP_AUTH_TOKEN"},
		{map[string]string{"APP_INSECURE_NO_AUTH": "maybe"}, "APP_INSECURE_NO_AUTH"},
		{map[string]string{"APP_DATABASE_URL": "mysql://x/y"}, "APP_DATABASE_URL"},
		{map[string]string{"APP_DATABASE_URL": "file:jobs.db?mode=memory"}, "APP_DATABASE_URL"},
		{map[string]string{"APP_DATABASE_URL": ":memory:"}, "APP_DATABASE_URL"},
		{map[string]string{"APP_DATABASE_URL": "postgres://%zz"}, "APP_DATABASE_URL"},
		{map[string]string{"APP_ALLOWED_ORIGINS": "*"}, "APP_ALLOWED_ORIGINS"},
		{map[string]string{"APP_ALLOWED_ORIGINS": "https://a.example/path"}, "APP_ALLOWED_ORIGINS"},
	}
	for _, tt := range tests {
		_, err := loadConfig(getenv(tt.env))
		require.ErrorContains(t, err, tt.want, "%v", tt.env)
	}
	_, err := loadConfig(getenv(map[string]string{"APP_CONCURRENCY": "x", "APP_SEGMENT_DELAY": "y"}))
	require.Len(t, strings.Split(err.Error(), "\n"), 2, "every problem is reported at once")
	_, err = loadConfig(getenv(map[string]string{"APP_AUTH_TOKEN": "short secret value"}))
	require.NotContains(t, err.Error(), "short secret value", "the token is never printed")
}

func TestParseDatabaseURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]database{
		"data/jobs.db":                   {target: "data/jobs.db"},
		"sqlite:data/x.db":               {target: "data/x.db"},
		"sqlite:///var/lib/jobs.db":      {target: "/var/lib/jobs.db"},
		"file:x.db":                      {target: "x.db"},
		"postgres://u@h/db":              {postgres: true, target: "postgres://u@h/db"},
		"POSTGRESQL://u@h/db?sslmode=no": {postgres: true, target: "POSTGRESQL://u@h/db?sslmode=no"},
	} {
		got, err := parseDatabaseURL(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	require.Equal(t, "postgres", describeDatabase("postgres://user:secret@h/db"), "no credentials in logs")
	require.Equal(t, "sqlite:x.db", describeDatabase("x.db"))
	require.Equal(t, "invalid", describeDatabase("mysql://x"))
}
