package jobsbun

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/testdb"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
)

// TestSQLiteListFiltersReadIndexRanges explains List's statement for each
// kind of filter: finished jobs are ranges of jobs_list_idx, one per kind
// and status (by status alone: each kind the counts know in that status,
// in the filter's queue), pending jobs come from the claim and promote
// indexes, running ones from the rescue index and waiting ones from
// theirs, and no branch walks the
// primary key or the table, which at a million finished jobs reads them
// all when few match (0.5 s).
func TestSQLiteListFiltersReadIndexRanges(t *testing.T) {
	t.Parallel()
	r := openTestSQLite(t)
	ctx := t.Context()
	js := []*jobs.Job{{Kind: "a"}, {Kind: "b", Queue: "q"}, {Kind: "c"}}
	require.NoError(t, r.Create(ctx, js...))
	_, err := r.db.ExecContext(ctx, "UPDATE jobs SET status = 'failed', finished_at = updated_at WHERE kind <> 'c'")
	require.NoError(t, err)
	cursor := uuid.Must(uuid.NewV7())
	const kindRange = "jobs_list_idx (kind=? AND status=?"
	for _, c := range []struct {
		q      jobs.ListQuery
		ranges []listRange
		want   []string
	}{
		{jobs.ListQuery{Statuses: []jobs.Status{jobs.StatusFailed}}, []listRange{{"a", "failed"}, {"b", "failed"}}, []string{kindRange + ")"}},
		{jobs.ListQuery{Statuses: []jobs.Status{jobs.StatusFailed, jobs.StatusSucceeded}, Queue: "q", Cursor: cursor.String()},
			[]listRange{{"b", "failed"}}, []string{kindRange + " AND id<?)"}},
		{jobs.ListQuery{Statuses: []jobs.Status{jobs.StatusCanceled}}, []listRange{}, nil},
		{jobs.ListQuery{Kind: "k", Statuses: []jobs.Status{jobs.StatusSucceeded, jobs.StatusCanceled}},
			[]listRange{{"k", "succeeded"}, {"k", "canceled"}}, []string{kindRange + ")"}},
		{jobs.ListQuery{Kind: "k", Statuses: []jobs.Status{jobs.StatusFailed}, CreatedBefore: time.Now()},
			[]listRange{{"k", "failed"}}, []string{kindRange + ")"}},
		{jobs.ListQuery{Statuses: []jobs.Status{jobs.StatusPending, jobs.StatusRunning, jobs.StatusWaiting}}, []listRange{},
			[]string{"jobs_claim_idx", "jobs_promote_idx", "jobs_rescue_idx", "jobs_waiting_idx"}},
		{jobs.ListQuery{Kind: "k"}, []listRange{{"k", "succeeded"}, {"k", "failed"}, {"k", "canceled"}},
			[]string{"jobs_claim_idx", "jobs_promote_idx", "jobs_rescue_idx", "jobs_waiting_idx", kindRange + ")"}},
	} {
		limit, after, err := c.q.Page()
		require.NoError(t, err)
		ranges, ok, err := r.listRanges(ctx, c.q, listStatuses(c.q))
		require.NoError(t, err)
		require.True(t, ok)
		require.ElementsMatch(t, c.ranges, ranges, "%+v", c.q)
		query, args := r.listSQL(c.q, limit, after, ranges)
		if c.want == nil {
			require.Empty(t, query, "no job can match")
			continue
		}
		plan := explain(t, r, query, args)
		for _, w := range c.want {
			require.Contains(t, plan, w, "%+v\n%s", c.q, plan)
		}
		requireNoFullScan(t, plan, c.q)
	}
}

// TestListStatusesReadEachStatusOnce: repeated statuses are read once, and
// a kind alone reads every status.
func TestListStatusesReadEachStatusOnce(t *testing.T) {
	t.Parallel()
	f, p := jobs.StatusFailed, jobs.StatusPending
	require.Equal(t, []jobs.Status{f, p}, listStatuses(jobs.ListQuery{Statuses: []jobs.Status{f, p, f}}))
	require.Len(t, listStatuses(jobs.ListQuery{Kind: "k"}), 6)
	require.Nil(t, listStatuses(jobs.ListQuery{Queue: "q"}))
}

// TestListWalksThePrimaryKeyPastManyRanges: a filter by status alone over
// more kinds than one statement reads ranges of (maxListRanges) is served
// by a walk of the primary key, and still returns the right page.
func TestListWalksThePrimaryKeyPastManyRanges(t *testing.T) {
	t.Parallel()
	r := openTestSQLite(t)
	ctx := t.Context()
	js := make([]*jobs.Job, maxListRanges)
	for i := range js {
		js[i] = &jobs.Job{Kind: fmt.Sprint("k", i)}
	}
	require.NoError(t, r.Create(ctx, js...))
	_, err := r.db.ExecContext(ctx, "UPDATE jobs SET status = 'failed', finished_at = updated_at")
	require.NoError(t, err)
	q := jobs.ListQuery{Statuses: []jobs.Status{jobs.StatusFailed}, Limit: 3}
	_, ok, err := r.listRanges(ctx, q, listStatuses(q))
	require.NoError(t, err)
	require.False(t, ok)
	page, err := r.List(ctx, q)
	require.NoError(t, err)
	require.Len(t, page.Jobs, 3)
	require.Equal(t, js[len(js)-1].ID, page.Jobs[0].ID)
}

// TestPostgresListFiltersReadIndexRanges explains List's statement on
// PostgreSQL, with sequential scans priced out (the test's table is tiny,
// and a scan of it is the cheapest plan): each finished range is read from
// jobs_list_idx, whose predicate the branch matches.
func TestPostgresListFiltersReadIndexRanges(t *testing.T) {
	t.Parallel()
	r := openTestPG(t, testdb.PostgresDSN(t), 2) // owners_pg_test.go
	ctx := t.Context()
	js := []*jobs.Job{{Kind: "a"}, {Kind: "b"}}
	require.NoError(t, r.Create(ctx, js...))
	_, err := r.db.ExecContext(ctx, "UPDATE jobs SET status = 'failed', finished_at = updated_at")
	require.NoError(t, err)
	for _, q := range []jobs.ListQuery{
		{Statuses: []jobs.Status{jobs.StatusFailed}},
		{Kind: "a", Statuses: []jobs.Status{jobs.StatusFailed}},
	} {
		limit, after, err := q.Page()
		require.NoError(t, err)
		ranges, ok, err := r.listRanges(ctx, q, listStatuses(q))
		require.NoError(t, err)
		require.True(t, ok)
		query, args := r.listSQL(q, limit, after, ranges)
		var plan []string
		err = r.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			if _, err := tx.ExecContext(ctx, "SET LOCAL enable_seqscan = off"); err != nil {
				return err
			}
			rows, err := tx.QueryContext(ctx, "EXPLAIN "+query, args...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var line string
				if err := rows.Scan(&line); err != nil {
					return err
				}
				plan = append(plan, line)
			}
			return rows.Err()
		})
		require.NoError(t, err)
		text := strings.Join(plan, "\n")
		require.Equal(t, len(ranges), strings.Count(text, "jobs_list_idx"), "%+v\n%s", q, text)
		require.NotContains(t, text, "Seq Scan", "%+v\n%s", q, text)
	}
}
