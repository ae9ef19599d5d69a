package testdb_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jobsmith/jobs/internal/testdb"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSQLitePathIsFreshAndWritable(t *testing.T) {
	t.Parallel()
	a, b := testdb.SQLitePath(t), testdb.SQLitePath(t)
	require.NotEqual(t, a, b)
	require.NoError(t, os.WriteFile(a, []byte("x"), 0o600))
	require.Equal(t, "jobs.db", filepath.Base(b))
}

func TestWithSearchPath(t *testing.T) {
	t.Parallel()
	got := testdb.WithSearchPath("postgres://u@127.0.0.1:5432/db?sslmode=disable", "test_abc")
	require.Equal(t, "postgres://u@127.0.0.1:5432/db?search_path=test_abc&sslmode=disable", got)
}

func TestPostgresDSNUsesItsOwnSchema(t *testing.T) {
	t.Parallel()
	dsn := testdb.PostgresDSN(t)
	require.True(t, strings.Contains(dsn, "search_path=test_"), dsn)
}
