package jobstest_test

import (
	"path/filepath"
	"testing"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/jobsbun"
	"github.com/jobsmith/jobs/jobsqlite"
	"github.com/jobsmith/jobs/jobstest"
)

// testConformance is the test an implementation's package declares as
// TestConformance(t *testing.T) in one of its _test.go files (an example
// file may not declare tests). Here the implementation is jobsbun on
// SQLite: each case gets a new database file in its own temporary
// directory, and the transaction cases get transactions on the database
// of the case's repository.
func testConformance(t *testing.T) {
	newRepo := func(t *testing.T) jobs.JobRepository {
		repo, err := jobsqlite.Open(t.Context(), filepath.Join(t.TempDir(), "jobs.db"))
		if err != nil {
			t.Fatal(err)
		}
		return repo // Run closes it when the case ends, before t.TempDir's cleanup
	}
	begin := func(t *testing.T, repo jobs.JobRepository) jobstest.Tx {
		tx, err := repo.(*jobsbun.Repository).DB().BeginTx(t.Context(), nil)
		if err != nil {
			t.Fatal(err)
		}
		// The suite passes Value to CreateTx, then commits or rolls back.
		return jobstest.Tx{Value: tx, Commit: tx.Commit, Rollback: tx.Rollback}
	}
	jobstest.Run(t, newRepo, jobstest.WithTx(begin))
}

// Run is called from a test of the package that implements
// jobs.JobRepository; this whole file is such a test file.
func ExampleRun() {
	_ = testConformance // go test runs it as TestConformance
}
