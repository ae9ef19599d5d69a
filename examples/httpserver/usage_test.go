package main

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestHelpExitsZero runs the built program with -h (and its spellings)
// while APP_ADDR names a busy port: it prints the usage to stdout and
// exits 0 without serving. Arguments are refused with status 2.
func TestHelpExitsZero(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	t.Parallel()
	bin := buildServer(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	runBin := func(args ...string) (stdout, stderr string, code int) {
		cmd := exec.CommandContext(t.Context(), bin, args...)
		cmd.Env = append(os.Environ(), "APP_ADDR="+busy.Addr().String(), "APP_DATABASE_URL="+t.TempDir()+"/jobs.db")
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			return o.String(), e.String(), ee.ExitCode()
		}
		require.NoError(t, err)
		return o.String(), e.String(), 0
	}
	for _, h := range []string{"-h", "-help", "--help"} {
		stdout, stderr, code := runBin(h)
		require.Equal(t, exitOK, code, "%s: %s", h, stderr)
		require.Equal(t, usage, stdout, h)
		require.Empty(t, stderr, h)
	}
	for _, args := range [][]string{{"serve"}, {"-port", "80"}} {
		stdout, stderr, code := runBin(args...)
		require.Equal(t, exitConfig, code, "%v", args)
		require.Empty(t, stdout)
		require.Contains(t, stderr, "-h for help", "%v", args)
	}
}

// TestUsageNamesEveryRouteAndVariable: the usage documents every route of
// the server and every APP_* variable the configuration reads, and names
// no other variable.
func TestUsageNamesEveryRouteAndVariable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{noRun: true})
	for _, r := range e.srv.routeTable() {
		method, path, _ := strings.Cut(strings.Replace(r.pattern, "{$}", "", 1), " ")
		re := regexp.MustCompile(`\b` + method + `\s+` + regexp.QuoteMeta(path) + `(\s|$)`)
		require.Regexp(t, re, usage, "usage.txt documents %s", r.pattern)
	}
	var read []string
	_, _ = loadConfig(func(name string) string {
		read = append(read, name)
		return ""
	})
	require.NotEmpty(t, read)
	for _, name := range read {
		require.Regexp(t, `(?m)^  `+name+` `, usage, "usage.txt documents %s", name)
	}
	for _, name := range regexp.MustCompile(`APP_[A-Z_]+`).FindAllString(usage, -1) {
		require.True(t, slices.Contains(read, name), "usage.txt names %s, which the server does not read", name)
	}
	for _, line := range strings.Split(usage, "\n") {
		require.LessOrEqual(t, len([]rune(line)), 80, "fits a terminal: %q", line)
	}
}

// TestReadmeHasTheUsage: the repository's README shows the usage exactly,
// so the two cannot drift apart.
func TestReadmeHasTheUsage(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	require.Contains(t, string(readme), "```text\n"+usage+"```\n",
		"README.md has usage.txt in a text block; copy it over after a change")
}
