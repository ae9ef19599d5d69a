package jobsbun

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

func TestParseSQLTimeAgreesWithTimeParse(t *testing.T) {
	t.Parallel()
	base := time.Date(2026, 2, 28, 23, 59, 58, 0, time.UTC)
	for _, at := range []time.Time{base, base.Add(123456 * time.Microsecond), base.Add(time.Nanosecond),
		base.Add(100 * time.Millisecond), base.In(time.FixedZone("w", -(9*3600 + 30*60))), time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)} {
		for _, l := range []string{sqlTimeLayout, "2006-01-02T15:04:05.999999999Z07:00"} {
			s := at.Format(l)
			want, err := time.Parse(l, s)
			require.NoError(t, err)
			got, ok := parseSQLTime(s)
			require.True(t, ok, s)
			require.True(t, want.Equal(got), "%s: %v", s, got)
			require.Equal(t, time.UTC, got.Location())
		}
	}
	for _, s := range []string{"", "2026-02-30 00:00:00+00:00", "2026-13-01 00:00:00+00:00", "2026-01-01 24:00:00+00:00",
		"2026-01-01 00:00:00", "2026-01-01 00:00:00.+00:00", "2026-01-01 00:00:00.1234567890+00:00", "2026-01-01 00:00:00+0000",
		"2026-01-01 00:00:00+24:00", "2026-0a-01 00:00:00+00:00", "2026/01/01 00:00:00+00:00", "2026-01-01 00:00:00+00:00x"} {
		_, ok := parseSQLTime(s)
		require.False(t, ok, s)
	}
	var c timeCol
	require.NoError(t, c.Scan("2026-01-01 00:00:00"), "other layouts still parse")
}

func BenchmarkTimeColScan(b *testing.B) {
	s := time.Now().Format(sqlTimeLayout)
	var c timeCol
	for b.Loop() {
		if err := c.Scan(s); err != nil {
			b.Fatal(err)
		}
	}
}
