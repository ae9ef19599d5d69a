package jobsbun

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jobsmith/jobs"
)

// jobColumns is the column list every query that returns jobs selects, in
// the order jobScanner expects.
const jobColumns = "id, kind, queue, status, priority, payload, result, progress_fraction, progress_message, " +
	"error, errors, attempt, max_attempts, timeout, unique_key, cancel_requested, run_at, created_at, " +
	"updated_at, started_at, finished_at, lease_owner, lease_token, lease_expires_at, checkpoint, output_seq, metadata, concurrency_key, deps_total, run_anyway, batch"

// sqliteJobColumns is jobColumns for SQLite, with each timestamp as the
// expression +col (the same text): modernc parses a column declared
// TIMESTAMP itself, with a failing and a succeeding time.Parse per value,
// whereas an expression comes back as text that timeCol parses directly.
var sqliteJobColumns = func() string {
	cols := strings.Split(jobColumns, ", ")
	for i, c := range cols {
		if strings.HasSuffix(c, "_at") {
			cols[i] = "+" + c
		}
	}
	return strings.Join(cols, ", ")
}()

// jobColumns returns the column list of the dialect (see sqliteJobColumns).
func (d sqlDialect) jobColumns() string {
	if d.pg {
		return jobColumns
	}
	return sqliteJobColumns
}

// jobScanner scans rows of jobColumns into Jobs without reflection. One
// scanner serves one result set; its destinations are allocated once.
//
// JSON columns are scanned as raw bytes and decoded leniently per row: a
// corrupt errors history is dropped, and a corrupt payload is returned as
// stored (the handler's decode fails for that job only), so one poisoned row
// never breaks a batch of others.
type jobScanner struct {
	j                               jobs.Job
	status                          string
	payload, result, errs           rawJSON
	checkpoint, metadata            rawJSON
	depsTotal                       int
	timeout                         int64
	uniqueKey, owner, token         sql.NullString
	runAt, created, updated         timeCol
	started, finished, leaseExpires timeCol
	dest                            []any
	tokenCol                        int // the index of lease_token in dest
}

func newJobScanner() *jobScanner {
	s := &jobScanner{}
	j := &s.j
	s.dest = []any{&j.ID, &j.Kind, &j.Queue, &s.status, &j.Priority, &s.payload, &s.result,
		&j.Progress.Fraction, &j.Progress.Message, &j.Error, &s.errs, &j.Attempt, &j.MaxAttempts,
		&s.timeout, &s.uniqueKey, &j.CancelRequested, &s.runAt, &s.created, &s.updated, &s.started,
		&s.finished, &s.owner, &s.token, &s.leaseExpires, &s.checkpoint, &j.OutputSeq, &s.metadata,
		&j.ConcurrencyKey, &s.depsTotal, &j.RunAnyway, &j.Batch}
	s.tokenCol = slices.Index(s.dest, any(&s.token))
	return s
}

// sqliteClaimColumns are the columns a claim returns on SQLite: those it
// does not set to values known in Go (status, owner, start, update and
// lease expiry; finished_at is NULL), in the order of newClaimScanner.
// Fewer columns cost less to store for RETURNING and to read.
const sqliteClaimColumns = "id, kind, queue, priority, payload, result, progress_fraction, progress_message, " +
	"error, errors, attempt, max_attempts, timeout, unique_key, cancel_requested, +run_at, +created_at, lease_token, " +
	"checkpoint, output_seq, metadata, concurrency_key, deps_total, run_anyway, batch"

// newClaimScanner scans rows of sqliteClaimColumns; the caller sets the
// other fields (see Repository.Claim).
func newClaimScanner() *jobScanner {
	s := &jobScanner{}
	j := &s.j
	s.dest = []any{&j.ID, &j.Kind, &j.Queue, &j.Priority, &s.payload, &s.result,
		&j.Progress.Fraction, &j.Progress.Message, &j.Error, &s.errs, &j.Attempt, &j.MaxAttempts,
		&s.timeout, &s.uniqueKey, &j.CancelRequested, &s.runAt, &s.created, &s.token, &s.checkpoint, &j.OutputSeq, &s.metadata, &j.ConcurrencyKey,
		&s.depsTotal, &j.RunAnyway, &j.Batch}
	s.tokenCol = slices.Index(s.dest, any(&s.token))
	return s
}

// scan reads the current row into a new Job.
func (s *jobScanner) scan(rows *sql.Rows) (*jobs.Job, error) {
	s.payload, s.result, s.errs, s.checkpoint, s.metadata = nil, nil, nil, nil, nil
	if err := rows.Scan(s.dest...); err != nil {
		return nil, err
	}
	j := new(jobs.Job)
	*j = s.j
	j.Status = jobs.Status(s.status)
	j.Payload = json.RawMessage(s.payload)
	j.Result = json.RawMessage(s.result)
	j.Checkpoint = json.RawMessage(s.checkpoint)
	j.Metadata = scanMetadata(s.metadata)
	j.DependsOn = nil
	if s.depsTotal > 0 {
		j.DependsOn = depsToRead // withDeps reads them (deps.go)
	}
	j.Errors = nil
	if len(s.errs) > 0 {
		var h []jobs.AttemptError
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
func scanJobs(rows *sql.Rows) ([]*jobs.Job, error) {
	defer rows.Close()
	s := newJobScanner()
	var out []*jobs.Job
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
	if t, ok := parseSQLTime(s); ok {
		c.t = t
		return nil
	}
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			c.t = t.UTC()
			return nil
		}
	}
	return fmt.Errorf("jobs: cannot parse timestamp %q", s)
}

// parseSQLTime parses the layout every timestamp is stored in,
// "2006-01-02 15:04:05.999999999-07:00" (also with T or Z), without
// time.Parse, and reports false for anything else.
func parseSQLTime(s string) (time.Time, bool) {
	if len(s) < 20 || s[4] != '-' || s[7] != '-' || (s[10] != ' ' && s[10] != 'T') || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	num := func(s string) int {
		n := 0
		for i := 0; i < len(s); i++ {
			if s[i] < '0' || s[i] > '9' {
				return -1
			}
			n = n*10 + int(s[i]-'0')
		}
		return n
	}
	y, mo, d, h, mi, sec := num(s[0:4]), num(s[5:7]), num(s[8:10]), num(s[11:13]), num(s[14:16]), num(s[17:19])
	if y < 0 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 59 {
		return time.Time{}, false
	}
	rest := s[19:]
	ns := 0
	if rest != "" && rest[0] == '.' {
		i := 1
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		digits := rest[1:i]
		if len(digits) == 0 || len(digits) > 9 {
			return time.Time{}, false
		}
		ns = num(digits)
		for range 9 - len(digits) {
			ns *= 10
		}
		rest = rest[i:]
	}
	off := 0
	switch {
	case rest == "Z":
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		oh, om := num(rest[1:3]), num(rest[4:6])
		if oh < 0 || oh > 23 || om < 0 || om > 59 {
			return time.Time{}, false
		}
		off = (oh*60 + om) * 60
		if rest[0] == '-' {
			off = -off
		}
	default:
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(mo), d, h, mi, sec, ns, time.UTC)
	if t.Day() != d { // a day past the end of its month
		return time.Time{}, false
	}
	return t.Add(-time.Duration(off) * time.Second), true
}
