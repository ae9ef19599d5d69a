package jobsbun

import (
	"slices"
	"strconv"
	"strings"

	"github.com/jobsmith/jobs"

	"github.com/google/uuid"
)

// listStatuses are the statuses whose jobs a List of q reads, each as a
// range of its own (see listSQL): those q asks for, without repeats, or
// every status when q filters by kind alone; nil when q filters by no
// status and no kind, and a walk of the primary key finds the page.
func listStatuses(q jobs.ListQuery) []jobs.Status {
	if len(q.Statuses) == 0 {
		if q.Kind == "" {
			return nil
		}
		return []jobs.Status{jobs.StatusPending, jobs.StatusRunning, jobs.StatusSucceeded, jobs.StatusFailed, jobs.StatusCanceled}
	}
	st := make([]jobs.Status, 0, len(q.Statuses))
	for _, s := range q.Statuses {
		if !slices.Contains(st, s) {
			st = append(st, s)
		}
	}
	return st
}

// listSQL is the statement of one List page of at most limit jobs older
// than after (none: uuid.Nil), with its arguments; q is valid.
//
// Without a status or kind filter it walks the primary key downwards. With
// one, walking the primary key would read every newer job that does not
// match (all of a million finished jobs, when none matches), so the IDs of
// each status come from a range of an index instead, newest first and at
// most limit of them, and the page is the newest of those:
//
//   - a finished status: jobs_list_status_idx, or jobs_list_kind_idx with
//     a kind (schema_counts.go); the branch names finished_at IS NOT NULL,
//     which those partial indexes require;
//   - pending or running: the claim or the rescue index, whose jobs are
//     read in full and sorted; their count is the backlog and the jobs at
//     work, not the table's size. On SQLite the branch orders by +id, so
//     that the planner does not walk the primary key instead.
func (r *Repository) listSQL(q jobs.ListQuery, limit int, after uuid.UUID) (string, []any) {
	var b strings.Builder
	args := make([]any, 0, 16)
	// filters appends the kind, queue and cursor conditions.
	filters := func() {
		if q.Kind != "" {
			b.WriteString(" AND kind = ?")
			args = append(args, q.Kind)
		}
		if q.Queue != "" {
			b.WriteString(" AND queue = ?")
			args = append(args, q.Queue)
		}
		if after != uuid.Nil {
			b.WriteString(" AND id < ?" + r.d.castUUID())
			args = append(args, after.String())
		}
	}
	b.WriteString("SELECT " + r.d.jobColumns() + " FROM jobs WHERE ")
	statuses := listStatuses(q)
	if statuses == nil {
		b.WriteString("TRUE")
		filters()
	} else {
		b.WriteString("id IN (")
		for i, s := range statuses {
			if i > 0 {
				b.WriteString(" UNION ALL ")
			}
			// s is valid (ListQuery.Page), so it is one of the fixed
			// status names: written as a literal, which partial indexes
			// need to apply.
			b.WriteString("SELECT id FROM (SELECT id FROM jobs WHERE status = '" + string(s) + "'")
			order := "id"
			switch {
			case s.Terminal():
				b.WriteString(" AND finished_at IS NOT NULL")
			case r.d.sqlite():
				order = "+id"
			}
			filters()
			b.WriteString(" ORDER BY " + order + " DESC LIMIT ?) AS s" + strconv.Itoa(i))
			args = append(args, limit+1)
		}
		b.WriteString(")")
	}
	b.WriteString(" ORDER BY id DESC LIMIT ?")
	args = append(args, limit+1)
	return b.String(), args
}
