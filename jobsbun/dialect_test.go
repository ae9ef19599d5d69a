package jobsbun

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDialectFragments(t *testing.T) {
	t.Parallel()
	lite, pg := sqlDialect{}, sqlDialect{pg: true}
	now := time.Now()

	s, args := lite.now(nil, now)
	require.Equal(t, "?", s)
	require.Equal(t, []any{now}, args)
	s, args = pg.now(nil, now)
	require.Equal(t, "now()", s)
	require.Empty(t, args, "PostgreSQL uses its own clock")

	s, args = lite.leaseUntil(nil, now, time.Second)
	require.Equal(t, "?", s)
	require.Equal(t, []any{now.Add(time.Second)}, args)
	s, args = pg.leaseUntil(nil, now, 1500*time.Millisecond)
	require.Contains(t, s, "clock_timestamp()", "the lease runs from when the row is written, not from when the statement began")
	require.Equal(t, []any{int64(1500000)}, args)

	require.Empty(t, lite.skipLocked()+lite.castUUID()+lite.castTime())
	require.Equal(t, " FOR UPDATE SKIP LOCKED", pg.skipLocked())
	require.Equal(t, "id IN (SELECT 1)", lite.idIn("SELECT 1"))
	require.Equal(t, "id = ANY(ARRAY(SELECT 1))", pg.idIn("SELECT 1"))

	for _, d := range []sqlDialect{lite, pg} {
		e := d.appendError("errors", "attempt", "?", "?")
		require.Equal(t, 2, strings.Count(e, "?"), "only the two placeholders: %s", e)
		require.Contains(t, e, "100")
	}
	cols := []batchCol{{"d_id", "uuid"}, {"d_n", "float8"}}
	rows := [][]any{{"a", 0.5}, {"b", []byte(`{"x":1}`)}, {"c", []byte(nil)}}
	q, args := lite.batchTable(cols, rows)
	require.Equal(t, "SELECT column1 AS d_id, column2 AS d_n FROM (VALUES (?, ?), (?, ?), (?, ?), (?, ?))", q,
		"padded to a power of two")
	require.Equal(t, []any{"a", 0.5, "b", `{"x":1}`, "c", nil, nil, nil}, args, "JSON bytes bind as text")
	q, args = pg.batchTable(cols, rows)
	require.Equal(t, "SELECT * FROM jsonb_to_recordset(?::jsonb) AS _r(d_id uuid, d_n float8)", q)
	require.Len(t, args, 1)
	require.Equal(t, "x", lite.jsonFromText("x"))
	require.Equal(t, "x::jsonb", pg.jsonFromText("x"))
}

func TestBatchRowsBoundTheValuesPerStatement(t *testing.T) {
	t.Parallel()
	lite, pg := sqlDialect{}, sqlDialect{pg: true}
	for cols, want := range map[int]int{2: 128, 4: 64, 9: 32, 40: 16} {
		require.Equal(t, want, lite.batchRows(cols), "%d columns", cols)
		require.LessOrEqual(t, lite.batchRows(cols)*cols, max(sqliteBatchValues, 16*cols))
		require.Equal(t, maxBatchRows, pg.batchRows(cols))
	}
	require.Equal(t, "OR ROLLBACK ", lite.orRollback())
	require.Empty(t, pg.orRollback())
}
