package jobsbun

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/testdb"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
)

// freezeHook stops the repository's goroutine after the first statement
// whose text contains match, as a process stopped by SIGSTOP would stop
// between two round trips, until release is closed.
type freezeHook struct {
	match   string
	frozen  chan struct{} // closed when a statement froze
	release chan struct{}
}

func (h *freezeHook) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context { return ctx }

func (h *freezeHook) AfterQuery(_ context.Context, e *bun.QueryEvent) {
	if !strings.Contains(e.Query, h.match) {
		return
	}
	select {
	case <-h.frozen:
		return // froze once already
	default:
	}
	close(h.frozen)
	<-h.release
}

// TestLimitedClaimFrozenStallsNoOne: a limited claim on PostgreSQL is one
// statement, so a process that froze right after it (as one stopped by
// SIGSTOP would, before it reads the answer) holds no lock: another
// process's limited claim of the same kind goes on at once, and admits
// nothing over the limit the frozen one filled.
func TestLimitedClaimFrozenStallsNoOne(t *testing.T) {
	dsn := testdb.PostgresDSN(t)
	frozenRepo, other := openTestPG(t, dsn, 0), openTestPG(t, dsn, 0)
	hook := &freezeHook{match: "jobs_limit_claim", frozen: make(chan struct{}), release: make(chan struct{})}
	frozenRepo.db.AddQueryHook(hook)
	ctx := t.Context()
	js := make([]*jobs.Job, 4)
	for i := range js {
		js[i] = &jobs.Job{Kind: "gpu"}
	}
	require.NoError(t, other.Create(ctx, js...))
	q := jobs.ClaimQuery{Owner: "w", Kinds: []string{"gpu"}, Limit: 2, LeaseDuration: time.Hour,
		KindLimits: map[string]jobs.Limit{"gpu": {Running: 2}}}

	type result struct {
		js  []*jobs.Job
		err error
	}
	late := make(chan result, 1)
	go func() {
		q := q
		q.Owner = "frozen"
		got, err := frozenRepo.Claim(ctx, q)
		late <- result{got, err}
	}()
	select {
	case <-hook.frozen:
	case <-time.After(30 * time.Second):
		t.Fatal("the claim never ran")
	}
	octx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	got, err := other.Claim(octx, q)
	require.NoError(t, err, "a claim beside the frozen one must not wait for it")
	require.Empty(t, got, "the frozen process's claim filled the limit")

	close(hook.release)
	r := <-late
	require.NoError(t, r.err)
	require.Len(t, r.js, 2)
	var running int
	require.NoError(t, other.db.QueryRowContext(ctx, "SELECT count(*) FROM jobs WHERE status = 'running'").Scan(&running))
	require.Equal(t, 2, running)
}
