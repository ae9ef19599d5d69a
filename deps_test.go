package jobs_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// A program that imports only this package (and uses MemoryRepository)
// links neither bun nor any SQL driver: storage lives in jobsbun.
func TestRootLinksNoSQL(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs the go command")
	}
	out, err := exec.CommandContext(t.Context(), "go", "list", "-deps", "github.com/jobsmith/jobs").CombinedOutput()
	require.NoError(t, err, "%s", out)
	for dep := range strings.Lines(string(out)) {
		dep = strings.TrimSpace(dep)
		require.NotEqual(t, "database/sql", dep, "the root package links database/sql")
		for _, banned := range []string{"github.com/uptrace/bun", "modernc.org/", "github.com/jackc/pgx", "github.com/mattn/go-sqlite3"} {
			require.False(t, strings.HasPrefix(dep, banned), "the root package links %s", dep)
		}
	}
}
