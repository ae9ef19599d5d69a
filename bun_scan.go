package jobs

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// jobColumns is the column list every query that returns jobs selects, in
// the order jobScanner expects.
const jobColumns = "id, kind, queue, status, priority, payload, result, progress_fraction, progress_message, " +
	"error, errors, attempt, max_attempts, timeout, unique_key, cancel_requested, run_at, created_at, " +
	"updated_at, started_at, finished_at, lease_owner, lease_token, lease_expires_at"

// jobScanner scans rows of jobColumns into Jobs without reflection. One
// scanner serves one result set; its destinations are allocated once.
//
// JSON columns are scanned as raw bytes and decoded leniently per row: a
// corrupt errors history is dropped, and a corrupt payload is returned as
// stored (the handler's decode fails for that job only), so one poisoned row
// never breaks a batch of others.
type jobScanner struct {
	j                               Job
	status                          string
	payload, result, errs           rawJSON
	timeout                         int64
	uniqueKey, owner, token         sql.NullString
	runAt, created, updated         timeCol
	started, finished, leaseExpires timeCol
	dest                            []any
}

func newJobScanner() *jobScanner {
	s := &jobScanner{}
	j := &s.j
	s.dest = []any{&j.ID, &j.Kind, &j.Queue, &s.status, &j.Priority, &s.payload, &s.result,
		&j.Progress.Fraction, &j.Progress.Message, &j.Error, &s.errs, &j.Attempt, &j.MaxAttempts,
		&s.timeout, &s.uniqueKey, &j.CancelRequested, &s.runAt, &s.created, &s.updated, &s.started,
		&s.finished, &s.owner, &s.token, &s.leaseExpires}
	return s
}

// scan reads the current row into a new Job.
func (s *jobScanner) scan(rows *sql.Rows) (*Job, error) {
	s.payload, s.result, s.errs = nil, nil, nil
	if err := rows.Scan(s.dest...); err != nil {
		return nil, err
	}
	j := new(Job)
	*j = s.j
	j.Status = Status(s.status)
	j.Payload = json.RawMessage(s.payload)
	j.Result = json.RawMessage(s.result)
	j.Errors = nil
	if len(s.errs) > 0 {
		var h []AttemptError
		if json.Unmarshal(s.errs, &h) == nil {
			for i := range h {
				h[i].At = h[i].At.UTC()
			}
			j.Errors = h
		}
	}
	j.Timeout = time.Duration(s.timeout)
	j.UniqueKey = s.uniqueKey.String
	j.LeaseOwner = s.owner.String
	j.LeaseToken = s.token.String
	j.RunAt, j.CreatedAt, j.UpdatedAt = s.runAt.t, s.created.t, s.updated.t
	j.StartedAt, j.FinishedAt, j.LeaseExpiresAt = s.started.t, s.finished.t, s.leaseExpires.t
	return j, nil
}

// scanJobs reads every row; rows that cannot be scanned are skipped and the
// first such error is returned beside the jobs that could be read.
func scanJobs(rows *sql.Rows) ([]*Job, error) {
	defer rows.Close()
	s := newJobScanner()
	var out []*Job
	var rowErr error
	for rows.Next() {
		j, err := s.scan(rows)
		if err != nil {
			if rowErr == nil {
				rowErr = err
			}
			continue
		}
		out = append(out, j)
	}
	if err := rows.Err(); err != nil {
		return out, err
	}
	return out, rowErr
}

// rawJSON scans a JSON column (text, bytes or NULL) into a fresh copy. A
// number (a row written by other code into a column of numeric affinity)
// is formatted back to its text.
type rawJSON []byte

func (r *rawJSON) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		*r = nil
	case []byte:
		*r = append(rawJSON(nil), v...)
	case string:
		*r = rawJSON(v)
	case int64, float64, bool:
		*r = fmt.Append(nil, v)
	default:
		return fmt.Errorf("jobs: cannot scan %T into a JSON column", v)
	}
	return nil
}

// timeCol scans a timestamp column into UTC, whatever form the driver
// returns: time.Time (pgx, modernc for TIMESTAMP columns), text in bun's
// format, or NULL (the zero time).
type timeCol struct{ t time.Time }

// timeLayouts are the text forms a timestamp may come back in.
var timeLayouts = []string{
	"2006-01-02 15:04:05.999999999-07:00",
	"2006-01-02T15:04:05.999999999-07:00",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
}

func (c *timeCol) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		c.t = time.Time{}
	case time.Time:
		c.t = v.UTC()
	case []byte:
		return c.parse(string(v))
	case string:
		return c.parse(v)
	default:
		return fmt.Errorf("jobs: cannot scan %T into a timestamp", v)
	}
	return nil
}

func (c *timeCol) parse(s string) error {
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			c.t = t.UTC()
			return nil
		}
	}
	return fmt.Errorf("jobs: cannot parse timestamp %q", s)
}
