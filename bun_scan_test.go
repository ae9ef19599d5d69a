package jobs

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestTimeColScansEveryDriverForm(t *testing.T) {
	t.Parallel()
	want := time.Date(2026, 11, 26, 1, 2, 3, 456789000, time.UTC)
	for _, v := range []any{
		want.In(time.FixedZone("x", 3600)),
		"2026-11-26 01:02:03.456789+00:00",
		[]byte("2026-11-26 02:02:03.456789+01:00"),
		"2026-11-26T01:02:03.456789Z",
		"2026-11-26 01:02:03.456789",
	} {
		var c timeCol
		require.NoError(t, c.Scan(v), "%v", v)
		require.True(t, want.Equal(c.t), "%v gave %v", v, c.t)
		require.Equal(t, time.UTC, c.t.Location())
	}
	var c timeCol
	require.NoError(t, c.Scan(nil))
	require.True(t, c.t.IsZero())
	require.Error(t, c.Scan("yesterday"))
	require.Error(t, c.Scan(3.5))
}

func TestRawJSONCopiesAndAcceptsNumbers(t *testing.T) {
	t.Parallel()
	buf := []byte(`{"a":1}`)
	var r rawJSON
	require.NoError(t, r.Scan(buf))
	buf[0] = 'X'
	require.Equal(t, `{"a":1}`, string(r), "a copy, not the driver's buffer")
	require.NoError(t, r.Scan(int64(42)))
	require.Equal(t, "42", string(r))
	require.NoError(t, r.Scan(nil))
	require.Nil(t, r)
	require.Error(t, r.Scan(struct{}{}))
}
