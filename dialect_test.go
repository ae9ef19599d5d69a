package jobs

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun/dialect"
)

func TestDialectFragments(t *testing.T) {
	t.Parallel()
	lite, pg := sqlDialect{name: dialect.SQLite}, sqlDialect{name: dialect.PG, pg: true}
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
	require.Contains(t, s, "now()")
	require.Equal(t, []any{int64(1500000)}, args)

	require.Empty(t, lite.skipLocked()+lite.castUUID()+lite.castJSON())
	require.Equal(t, " FOR UPDATE SKIP LOCKED", pg.skipLocked())
	require.Equal(t, "id IN (SELECT 1)", lite.idIn("SELECT 1"))
	require.Equal(t, "id = ANY(ARRAY(SELECT 1))", pg.idIn("SELECT 1"))

	for _, d := range []sqlDialect{lite, pg} {
		e := d.appendError("errors", "attempt", "?", "?")
		require.Equal(t, 2, strings.Count(e, "?"), "only the two placeholders: %s", e)
		require.Contains(t, e, "100")
	}
	var b strings.Builder
	valuesRow(&b, "::uuid", "")
	require.Equal(t, "(?::uuid, ?)", b.String())
	require.Nil(t, jsonArg(nil))
	require.Equal(t, "{}", jsonArg([]byte("{}")))
}
