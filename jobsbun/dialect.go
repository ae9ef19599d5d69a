package jobsbun

import (
	"encoding/json"
	"fmt"
	"math/bits"
	"strings"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/rules"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
)

// This file is the only place where the SQL of [Repository] differs
// between SQLite and PostgreSQL (the DDL of each lives in schema.go).
//
// Clocks: on SQLite every time comes from Go. On PostgreSQL the lease
// arithmetic and the claim/rescue readiness checks use the database clock
// (now()), so that many hosts with skewed clocks agree on when a lease
// expired; the other timestamps still come from Go.

// sqlDialect holds the dialect-specific fragments of the repository's SQL.
type sqlDialect struct {
	pg bool // PostgreSQL; SQLite otherwise
}

// newSQLDialect picks the fragments for db, or refuses a dialect other than
// SQLite and PostgreSQL.
func newSQLDialect(db *bun.DB) (sqlDialect, error) {
	switch n := db.Dialect().Name(); n {
	case dialect.SQLite:
		return sqlDialect{}, nil
	case dialect.PG:
		return sqlDialect{pg: true}, nil
	default:
		return sqlDialect{}, newError(jobs.ErrInvalidArgument, "new repository", [16]byte{}, "unsupported dialect %s: use SQLite or PostgreSQL", n)
	}
}

// sqlite reports whether the database is SQLite.
func (d sqlDialect) sqlite() bool { return !d.pg }

// now is the SQL for "now" in lease and readiness checks: the bound Go time
// on SQLite ("?", consuming the argument goNow), now() on PostgreSQL.
// It appends its argument to args when one is needed.
func (d sqlDialect) now(args []any, goNow time.Time) (string, []any) {
	if d.pg {
		return "now()", args
	}
	return "?", append(args, goNow)
}

// callTime is the SQL for the time a call was made, for a statement that
// may have waited before it ran: the bound Go time goNow on SQLite, and on
// PostgreSQL the statement's start, now(), less waited, the time the call
// spent before the statement was sent.
func (d sqlDialect) callTime(args []any, goNow time.Time, waited time.Duration) (string, []any) {
	if d.pg {
		return "(now() - ? * interval '1 microsecond')", append(args, waited.Microseconds())
	}
	return "?", append(args, goNow)
}

// leaseUntil is the SQL for "now + lease" and its arguments appended to args.
// It reads the clock when the row is written, after any wait for a lock:
// clock_timestamp() on PostgreSQL, where now() is the time the statement
// began; on SQLite goNow, which the caller reads once it holds the write
// lock. A write that waited for a lock therefore still grants a whole lease.
func (d sqlDialect) leaseUntil(args []any, goNow time.Time, lease time.Duration) (string, []any) {
	if d.pg {
		return "(clock_timestamp() + ? * interval '1 microsecond')", append(args, lease.Microseconds())
	}
	return "?", append(args, goNow.Add(lease))
}

// newToken is the SQL expression giving each claimed row its own fresh
// lease token within one statement.
func (d sqlDialect) newToken() string {
	if d.pg {
		return "gen_random_uuid()::text"
	}
	return "lower(hex(randomblob(16)))"
}

// skipLocked is appended to the claim and rescue subqueries: on PostgreSQL
// concurrent claimers skip each other's rows instead of waiting; SQLite has
// one writer at a time and needs nothing.
func (d sqlDialect) skipLocked() string {
	if d.pg {
		return " FOR UPDATE SKIP LOCKED"
	}
	return ""
}

// limitArg is the placeholder of a LIMIT whose value changes between runs
// of a cached statement. On SQLite, "LIMIT ?" lets the planner read the
// bound value, which marks the statement to be re-prepared whenever the
// value is bound again (every run); "+?" is the same value, evaluated at
// run time.
func (d sqlDialect) limitArg() string {
	if d.pg {
		return "?"
	}
	return "+?"
}

// stillPending is the claim's re-check, in the outer UPDATE, that a picked
// row is still pending. On PostgreSQL it compares under the "C" collation:
// the same test for these ASCII values, but it does not imply the
// predicate of the partial claim index, so the planner cannot use that
// index to find the picked IDs. Without statistics (a new or freshly filled
// table) it otherwise does exactly that, scanning the whole partial index
// for "id = ANY(…)" (id is its third column): 60 ms instead of 2 ms per
// claim of 100 jobs among 20 000; the primary key is the right path.
func (d sqlDialect) stillPending() string {
	if d.pg {
		return `status = 'pending' COLLATE "C"`
	}
	return "status = 'pending'"
}

// idIn is "id IN (sub)", for a subquery that picks rows to update. On
// PostgreSQL it is "id = ANY(ARRAY(sub))", which runs the subquery once (an
// InitPlan): planned as a semi-join, the subquery with LIMIT … FOR UPDATE
// would be rescanned per row, skip the rows this statement already updated,
// and pick more than LIMIT rows.
func (d sqlDialect) idIn(sub string) string {
	if d.pg {
		return "id = ANY(ARRAY(" + sub + "))"
	}
	return "id IN (" + sub + ")"
}

// greatest and least name the SQL functions of the larger and the smaller
// of their arguments.
func (d sqlDialect) greatest() string {
	if d.pg {
		return "GREATEST"
	}
	return "max"
}

func (d sqlDialect) least() string {
	if d.pg {
		return "LEAST"
	}
	return "min"
}

// castUUID and castTime are casts for placeholders where PostgreSQL cannot
// infer the type; SQLite needs none.
func (d sqlDialect) castUUID() string { return d.cast("uuid") }
func (d sqlDialect) castTime() string { return d.cast("timestamptz") }
func (d sqlDialect) cast(t string) string {
	if d.pg {
		return "::" + t
	}
	return ""
}

// batchTable is the body of the CTE _data that holds a batch write's rows
// with the given columns, and its arguments.
//
// PostgreSQL gets the rows as one JSON array bound to one placeholder and
// typed by jsonb_to_recordset: the statement text is the same for 1 row or
// 1 000 and the values need no casts. SQLite gets a VALUES list with one
// placeholder per value: on SQLite, unpacking JSON with json_each costs
// more than parsing the longer statement.
func (d sqlDialect) batchTable(cols []batchCol, rows [][]any) (string, []any) {
	var b strings.Builder
	if d.pg {
		b.WriteString("SELECT * FROM jsonb_to_recordset(?::jsonb) AS _r(")
		for i, c := range cols {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(c.name + " " + c.pgType)
		}
		b.WriteString(")")
		return b.String(), []any{string(appendBatchJSON(nil, cols, rows))}
	}
	// Pad to a power of two with rows of NULLs (they match no job), so
	// that few distinct statements exist and stay prepared (stmtCache).
	n := len(rows)
	if n > 0 {
		n = 1 << bits.Len(uint(n-1)) // callers send at most maxBatchRows
	}
	args := make([]any, 0, len(cols)*n)
	b.WriteString("SELECT ")
	for i, c := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "column%d AS %s", i+1, c.name)
	}
	b.WriteString(" FROM (VALUES ")
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		row := make([]any, len(cols))
		if i < len(rows) {
			row = rows[i]
		}
		b.WriteByte('(')
		for j, v := range row {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteByte('?')
			if bs, ok := v.([]byte); ok { // JSON text: bind as text, not as a blob
				v = nil
				if bs != nil {
					v = string(bs)
				}
			}
			args = append(args, v)
		}
		b.WriteByte(')')
	}
	b.WriteString(")")
	return b.String(), args
}

// sqliteBatchValues is about the most values one batch statement binds on
// SQLite. It keeps the statements of the cache small; binding itself is
// linear (modernc before v1.62 matched arguments to parameters in quadratic
// time, and a Finish of 100 jobs with results then spent half its CPU
// binding).
const sqliteBatchValues = 320

// batchRows is the most rows one batch statement with cols columns carries:
// maxBatchRows on PostgreSQL (one JSON value), and on SQLite the power of
// two that keeps it near sqliteBatchValues values (at least 16 rows).
func (d sqlDialect) batchRows(cols int) int {
	if d.pg || cols <= 0 {
		return maxBatchRows
	}
	n := max(sqliteBatchValues/cols, 16)
	return min(1<<(bits.Len(uint(n))-1), maxBatchRows)
}

// orRollback is the conflict clause of batch writes that may run as several
// statements of one transaction: on SQLite, OR ROLLBACK ends the whole
// transaction on a failing row (the write fails anyway), so that SQLite
// keeps no statement journal, which copies each page a statement touches.
func (d sqlDialect) orRollback() string {
	if d.pg {
		return ""
	}
	return "OR ROLLBACK "
}

// bindsArgs reports whether the repository runs its hottest fixed statements
// as cached prepared statements with driver-bound "?" arguments (SQLite,
// where preparing costs as much as running; see stmtCache). On PostgreSQL
// every statement goes through bun, which formats the values into the SQL.
func (d sqlDialect) bindsArgs() bool { return !d.pg }

// jsonFromText is the SQL of a JSON column value from a text column of a
// batch table.
func (d sqlDialect) jsonFromText(col string) string {
	if d.pg {
		return col + "::jsonb"
	}
	return col
}

// appendError is the SQL expression of the errors column with one more
// attempt error {attempt, error, at} appended, keeping the last
// rules.MaxErrorHistory entries. col is the current column, attempt the SQL of the
// attempt number, msg and at the SQL of the error text and the RFC 3339 time
// (placeholders or columns). A stored history that is not a JSON array
// (corrupt) is replaced instead of failing the statement.
func (d sqlDialect) appendError(col, attempt, msg, at string) string {
	if d.pg {
		return fmt.Sprintf(`(SELECT CASE WHEN jsonb_array_length(a) > %[5]d THEN a - 0 ELSE a END FROM (SELECT `+
			`(CASE WHEN jsonb_typeof(%[1]s) = 'array' THEN %[1]s ELSE '[]'::jsonb END) || `+
			`jsonb_build_array(jsonb_build_object('attempt', %[2]s, 'error', (%[3]s)::text, 'at', (%[4]s)::text)) AS a) AS _h)`,
			col, attempt, msg, at, rules.MaxErrorHistory)
	}
	return fmt.Sprintf(`(SELECT CASE WHEN json_array_length(a) > %[5]d THEN json_remove(a, '$[0]') ELSE a END FROM (SELECT `+
		`json_insert(CASE WHEN json_valid(%[1]s) THEN (CASE WHEN json_type(%[1]s) = 'array' THEN %[1]s ELSE '[]' END) ELSE '[]' END, `+
		`'$[#]', json_object('attempt', %[2]s, 'error', %[3]s, 'at', %[4]s)) AS a))`,
		col, attempt, msg, at, rules.MaxErrorHistory)
}

// outputCols are the columns that a fenced batch with output adds to its
// table (see fencedBatch): d_n, the number of a row's items, and on
// PostgreSQL d_items, the items themselves as one JSON array (see
// withOutput); SQLite appends them with statements of their own
// (Repository.insertOutput).
func outputCols(d sqlDialect) []batchCol {
	if d.pg {
		return []batchCol{{"d_n", "int8"}, {"d_items", "jsonb"}}
	}
	return []batchCol{{"d_n", "int8"}}
}

// outputValues appends the values of outputCols for items to v.
func outputValues(d sqlDialect, v []any, items []json.RawMessage) []any {
	v = append(v, int64(len(items)))
	if d.pg {
		v = append(v, jsonItems(items))
	}
	return v
}

// withOutput is the statement of a fenced batch with output, from its
// table and its UPDATE … RETURNING id, status: it returns id, status,
// output_seq. On PostgreSQL it also appends the items of each row it
// updated and did not leave pending, numbered after the output_seq the row
// had, in the same statement (one round trip, atomic without a
// transaction).
func (d sqlDialect) withOutput(table, update string) string {
	if d.pg {
		return "WITH _data AS (" + table + "), _u AS (" + update + ", output_seq, d_n, d_items), " +
			"_o AS (INSERT INTO job_output (job_id, seq, data) SELECT _u.id, _u.output_seq - _u.d_n + _e.k, _e.v " +
			"FROM _u, jsonb_array_elements(_u.d_items) WITH ORDINALITY AS _e(v, k) WHERE _u.status <> 'pending') " +
			"SELECT id, status, has_dependents, output_seq FROM _u"
	}
	return "WITH _data AS (" + table + ") " + update + ", output_seq"
}

// lockMigrations is the statement that serialises schema migrations across
// processes inside the migration transaction. On SQLite the write lock
// taken by the transaction's first write does it, so a harmless write is
// enough; on PostgreSQL an advisory transaction lock.
func (d sqlDialect) lockMigrations() string {
	if d.pg {
		return "SELECT pg_advisory_xact_lock(7428513690412)"
	}
	return "UPDATE jobs_schema_version SET version = version WHERE version < 0"
}
