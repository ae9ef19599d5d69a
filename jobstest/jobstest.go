// Package jobstest is the conformance suite of [jobs.JobRepository], in the
// manner of testing/slogtest: any implementation of the interface must pass
// it, and the suite is the precise definition of the storage contract that
// the interface's documentation states in prose.
//
// Call [Run] from a test with a function that returns a new, empty
// repository:
//
//	func TestConformance(t *testing.T) {
//		jobstest.Run(t, func(t *testing.T) jobs.JobRepository {
//			return jobs.NewMemoryRepository()
//		})
//	}
//
// Implementations that can do more pass options: [WithTx] enables the cases
// of [jobs.JobRepository.CreateTx] in the caller's transaction, and
// [WithCorruptRow] the case of a row whose stored data is damaged. A
// repository built with a payload limit other than the default declares it
// with [WithMaxPayloadBytes].
//
// The cases are grouped by topic: Create, BadInput, StateMachine, Finish,
// Claim, Pause (paused queues: hidden from Claim, listed by Stats, their
// running jobs unaffected), Schedule (one job per tick, whatever the
// writers), Fencing, Progress, Checkpoint (saved by an
// attempt, fenced by its lease, handed to the next attempt), Output (items stored with a
// checkpoint or an outcome, numbered and read back; an attempt that resumes
// never repeats them), Cancel, Release, Rescue, List, Stats, Prune, Tx,
// Lifecycle (Close and the poison row), Races (two writers on one job, where
// exactly one must win), Context, Admin (retry, cancel and delete of one
// job or of a filtered batch), Metadata (stored with the job, within
// limits), Limits, Fairness and Deps (jobs created after others: waiting
// until they end, pending when they succeeded, canceled down the graph when
// one failed, by whatever path it ended) and Batch (a job that is the batch
// of its dependencies: its progress is theirs together, its cancel
// cancels them, and it ends by itself or runs its callback once they have
// all ended).
//
// Every case runs as its own parallel subtest with its own repository, so a
// failure names the broken rule (for example
// "TestConformance/Fencing/RescuedLeaseIsLost"), and -run can select cases.
package jobstest

import (
	"slices"
	"testing"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/rules"
)

// Option adapts the suite to the capabilities of an implementation.
type Option func(*config)

type config struct {
	maxPayload int
	beginTx    func(t *testing.T, repo jobs.JobRepository) Tx
	corrupt    func(t *testing.T, repo jobs.JobRepository, id uuid.UUID)
	stressJobs int
}

// WithMaxPayloadBytes tells the suite the payload and result limit the
// repositories were built with (such as jobsbun.WithMaxPayloadBytes). The
// default is 1 MiB (1 << 20), the default of every repository in this module.
func WithMaxPayloadBytes(n int) Option {
	return func(c *config) { c.maxPayload = n }
}

// Tx is a transaction of the database behind a repository, as the suite
// drives it: Value is what [jobs.JobRepository.CreateTx] takes (for jobsbun,
// a bun.Tx), Commit and Rollback end it.
type Tx struct {
	Value    any
	Commit   func() error
	Rollback func() error
}

// WithTx enables the cases of CreateTx. begin must start a transaction on
// the database behind repo (a repository returned by the factory given to
// [Run]); the suite commits or rolls it back. Without WithTx the suite only
// checks that CreateTx refuses what is not a transaction.
func WithTx(begin func(t *testing.T, repo jobs.JobRepository) Tx) Option {
	return func(c *config) { c.beginTx = begin }
}

// WithCorruptRow enables the poison-row case. corrupt must damage the stored
// row of job id behind the repository's back (for example write a payload
// that is not JSON with raw SQL), in a way that the repository may meet in
// the field. The suite then checks that a claim batch holding the damaged
// row still claims every other job, and that the damaged job, unless the
// repository could read it and handed it out, failed at once with an error
// instead of staying running under a lease that nobody holds.
func WithCorruptRow(corrupt func(t *testing.T, repo jobs.JobRepository, id uuid.UUID)) Option {
	return func(c *config) { c.corrupt = corrupt }
}

// WithStressJobs sets how many jobs the concurrent-claimer case spreads over
// its 16 claimers. The default is 5 000, or 1 000 when the race detector is
// on; slow backends may lower it under -race.
func WithStressJobs(n int) Option {
	return func(c *config) { c.stressJobs = n }
}

// Run runs the conformance suite against the repositories that newRepo
// returns. newRepo is called once per case, from the case's own goroutine
// and possibly in parallel with other cases; it must return a new, empty
// repository and register with t.Cleanup whatever must be released after the
// case (a database, a temporary directory). Run closes each repository at the
// end of its case, before those cleanups.
func Run(t *testing.T, newRepo func(t *testing.T) jobs.JobRepository, opts ...Option) {
	t.Helper()
	cfg := config{maxPayload: rules.MaxPayloadBytes, stressJobs: defaultStressJobs}
	for _, o := range opts {
		o(&cfg)
	}
	groups := []struct {
		name  string
		cases []testCase
	}{
		{"Create", createCases},
		{"BadInput", badInputCases},
		{"StateMachine", stateCases},
		{"Finish", finishCases},
		{"Claim", claimCases},
		{"Pause", pauseCases},
		{"Schedule", scheduleCases},
		{"Fencing", fencingCases},
		{"Progress", progressCases},
		{"Checkpoint", checkpointCases},
		{"Output", outputCases},
		{"Cancel", cancelCases},
		{"Release", releaseCases},
		{"Rescue", rescueCases},
		{"List", listCases},
		{"Stats", statsCases},
		{"Prune", pruneCases},
		{"Tx", txCases},
		{"Lifecycle", lifecycleCases},
		{"Races", raceCases},
		{"Context", contextCases},
		{"Admin", append(adminCases, adminRaceCases...)},
		{"Metadata", metadataCases},
		{"Limits", limitCases},
		{"Fairness", fairCases},
		{"Deps", slices.Concat(depCases, depEndCases, depRaceCases)},
		{"Batch", slices.Concat(batchCases, batchRetryCases, batchRaceCases)},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			for _, c := range g.cases {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					repo := newRepo(t)
					t.Cleanup(func() { _ = repo.Close() })
					c.run(t, &harness{repo: repo, cfg: &cfg})
				})
			}
		})
	}
}

// testCase is one rule of the contract.
type testCase struct {
	name string
	run  func(t *testing.T, h *harness)
}
