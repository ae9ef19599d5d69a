package jobsbun

import (
	"context"
	"database/sql"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/rules"

	"github.com/uptrace/bun"
)

// This file holds what [Repository] does with a row that a claim or a
// rescue updated but cannot read back, because other code damaged it
// behind the repository's back (a creation time that is not a time, an
// integer column holding text). Such a job cannot be handed to a handler,
// and no retry can repair its row, so it fails at once with the scan error
// as its error, instead of running under a lease that nobody holds until
// the rescuer requeues it, only to be dropped again, and fails as "lease
// expired" with the real cause lost. The other rows of the batch are
// unaffected.

// unreadable is a row that scan could not read: its ID and lease token,
// read on their own, and the scan error.
type unreadable struct {
	id    string
	token sql.NullString // NULL after a rescue
	err   error
}

// scanLenient scans every row it can. A row that cannot be scanned does not
// fail the rows read with it: it is returned in bad, for failUnreadable,
// unless even its ID cannot be read (then it is left out, as before).
func scanLenient(rows *sql.Rows, s *jobScanner) (js []*jobs.Job, bad []unreadable, err error) {
	defer rows.Close()
	for rows.Next() {
		j, err := s.scan(rows)
		if err == nil {
			js = append(js, j)
			continue
		}
		if u, ok := s.identify(rows); ok {
			u.err = err
			bad = append(bad, u)
		}
	}
	return js, bad, rows.Err()
}

// identify reads the ID and lease token of the current row, which scan
// could not read, taking every other column as whatever the driver returns.
// It reports false when even these cannot be read.
func (s *jobScanner) identify(rows *sql.Rows) (unreadable, bool) {
	var u unreadable
	dest := make([]any, len(s.dest))
	for i := range dest {
		dest[i] = new(any)
	}
	dest[0], dest[s.tokenCol] = &u.id, &u.token
	return u, rows.Scan(dest...) == nil
}

// unreadableError is the error stored for a job whose row cannot be read.
func unreadableError(err error) string {
	return rules.CleanText(rules.ErrorText("stored job cannot be read: " + err.Error()))
}

// failUnreadable fails the jobs of bad at time t, with db, the connection
// or transaction of the write that updated them. After a claim (rescued
// false) each write is fenced by the lease token the claim gave the row; a
// job with a cancel request ends canceled, as in Finish. After a rescue
// (rescued true) the rows hold no lease, and each write matches only a row
// that rescue requeued or failed at t: a claim that took the requeued row in
// between fails it itself. The error of the job's last attempt becomes the
// scan error, appended to its history.
func (r *Repository) failUnreadable(ctx context.Context, db bun.IDB, t time.Time, rescued bool, bad []unreadable) error {
	d := r.d
	q := "UPDATE jobs SET status = CASE WHEN cancel_requested THEN 'canceled' ELSE 'failed' END, error = ?, " +
		"errors = " + d.appendError("errors", "attempt", "?", "?") + ", finished_at = ?" + d.castTime() + ", " +
		"lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, updated_at = ?" + d.castTime() + " WHERE id = ? AND "
	if rescued {
		q += "lease_token IS NULL AND updated_at = ?" + d.castTime() + " AND (status = 'pending' OR status = 'failed')"
	} else {
		q += "lease_token = ? AND status = 'running'"
	}
	for _, u := range bad {
		msg := unreadableError(u.err)
		args := []any{msg, msg, t.Format(time.RFC3339Nano), t, t, u.id}
		if rescued {
			args = append(args, t)
		} else {
			args = append(args, u.token.String)
		}
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			return err
		}
	}
	return nil
}
