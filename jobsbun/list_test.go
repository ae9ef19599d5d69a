package jobsbun

import (
	"strings"
	"testing"

	"github.com/jobsmith/jobs"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// TestSQLiteListFiltersReadIndexRanges explains List's statement for each
// kind of filter: a finished status is a range of jobs_list_status_idx
// (or jobs_list_kind_idx with a kind), pending and running come from the
// claim and rescue indexes, and no branch walks the primary key, which at
// a million finished jobs reads them all when few match (1.4 s).
func TestSQLiteListFiltersReadIndexRanges(t *testing.T) {
	t.Parallel()
	r := openTestSQLite(t)
	cursor := uuid.Must(uuid.NewV7())
	for _, c := range []struct {
		q    jobs.ListQuery
		want []string
	}{
		{jobs.ListQuery{Statuses: []jobs.Status{jobs.StatusFailed}}, []string{"jobs_list_status_idx (status=?)"}},
		{jobs.ListQuery{Statuses: []jobs.Status{jobs.StatusFailed}, Queue: "q", Cursor: cursor.String()},
			[]string{"jobs_list_status_idx (status=? AND id<?)"}},
		{jobs.ListQuery{Kind: "k", Statuses: []jobs.Status{jobs.StatusSucceeded, jobs.StatusCanceled}},
			[]string{"jobs_list_kind_idx (kind=? AND status=?)"}},
		{jobs.ListQuery{Statuses: []jobs.Status{jobs.StatusPending, jobs.StatusRunning}}, []string{"jobs_claim_idx", "jobs_rescue_idx"}},
		{jobs.ListQuery{Kind: "k"}, []string{"jobs_claim_idx", "jobs_rescue_idx", "jobs_list_kind_idx (kind=? AND status=?)"}},
	} {
		limit, after, err := c.q.Page()
		require.NoError(t, err)
		query, args := r.listSQL(c.q, limit, after)
		plan := explain(t, r, query, args)
		for _, w := range c.want {
			require.Contains(t, plan, w, "%+v\n%s", c.q, plan)
		}
		for _, line := range strings.Split(plan, "\n") {
			require.NotContains(t, line, "SCAN jobs USING INDEX sqlite_autoindex", "%+v\n%s", c.q, plan)
			require.NotEqual(t, "SCAN jobs", line, "%+v\n%s", c.q, plan)
		}
	}
}

// TestListStatusesReadEachStatusOnce: repeated statuses are read once, and
// a kind alone reads every status.
func TestListStatusesReadEachStatusOnce(t *testing.T) {
	t.Parallel()
	f, p := jobs.StatusFailed, jobs.StatusPending
	require.Equal(t, []jobs.Status{f, p}, listStatuses(jobs.ListQuery{Statuses: []jobs.Status{f, p, f}}))
	require.Len(t, listStatuses(jobs.ListQuery{Kind: "k"}), 5)
	require.Nil(t, listStatuses(jobs.ListQuery{Queue: "q"}))
}
