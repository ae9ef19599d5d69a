package main

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/jobsmith/jobs/internal/testdb"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The demo re-executes itself as its workers; under test that is this
	// binary, so it must take the worker role here too.
	if name := os.Getenv(envWorker); name != "" {
		if err := workerMain(name); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// runDemo runs the demo in the test's own schema and returns its output and
// the number of jobs each worker ran.
func runDemo(t *testing.T, c config) (string, map[string]int) {
	t.Helper()
	dsn := testdb.PostgresDSN(t)
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	c.DB, c.Schema = dsn, u.Query().Get("search_path")
	var out bytes.Buffer
	require.NoError(t, run(t.Context(), c, &out))
	counts := map[string]int{}
	for _, m := range regexp.MustCompile(`(worker-\d+)\s+pid \d+\s+ran\s+(\d+)`).FindAllStringSubmatch(out.String(), -1) {
		counts[m[1]], _ = strconv.Atoi(m[2])
	}
	return out.String(), counts
}

func TestJobsSpreadOverWorkers(t *testing.T) {
	t.Parallel()
	out, counts := runDemo(t, config{Workers: 3, Jobs: 150, Lease: 2 * time.Second})
	require.Contains(t, out, "150 jobs done")
	require.Len(t, counts, 3, out)
	total, busy := 0, 0
	for _, n := range counts {
		total += n
		if n > 0 {
			busy++
		}
	}
	require.Equal(t, 150, total, "every job's result names one worker")
	require.GreaterOrEqual(t, busy, 2, "jobs spread over the workers:\n%s", out)
}

func TestKilledWorkersJobsAreRunByOthers(t *testing.T) {
	t.Parallel()
	out, counts := runDemo(t, config{Workers: 2, Jobs: 120, Lease: time.Second, Kill: true})
	require.Contains(t, out, "killed worker-1")
	require.Contains(t, out, "120 jobs done")
	require.Equal(t, 120, counts["worker-1"]+counts["worker-2"], out)
	require.Positive(t, counts["worker-2"])
}

func TestRunRefusesEmptyDemo(t *testing.T) {
	t.Parallel()
	require.Error(t, run(t.Context(), config{Workers: 0, Jobs: 1}, &bytes.Buffer{}))
}
