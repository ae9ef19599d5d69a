package jobsbun

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestAppendBatchJSONIsValidJSON(t *testing.T) {
	t.Parallel()
	cols := []batchCol{{"s", "text"}, {"n", "float8"}, {"i", "bigint"}, {"b", "boolean"}, {"t", "timestamptz"}, {"j", "text"}, {"z", "text"}}
	weird := "q\"uote\\ ; -- ? \x00\x01\x1f\t\n é 🙂 \xff end"
	at := time.Date(2026, 1, 2, 3, 4, 5, 600000000, time.FixedZone("x", 3600))
	out := appendBatchJSON(nil, cols, [][]any{
		{weird, 0.25, int64(-7), true, at, []byte(`{"a": [1, 2]}`), nil},
		{"", 1e-7, 3, false, time.Time{}, []byte(nil), "x"},
	})
	require.True(t, json.Valid(out), string(out))
	var got []map[string]any
	require.NoError(t, json.Unmarshal(out, &got))
	require.Len(t, got, 2)
	require.Equal(t, "q\"uote\\ ; -- ? \x00\x01\x1f\t\n é 🙂 \uFFFD end", got[0]["s"])
	require.Equal(t, 0.25, got[0]["n"])
	require.Equal(t, -7.0, got[0]["i"])
	require.Equal(t, true, got[0]["b"])
	require.Equal(t, "2026-01-02 02:04:05.6+00:00", got[0]["t"], "UTC in the SQLite text layout")
	require.Equal(t, `{"a": [1, 2]}`, got[0]["j"], "JSON values travel as their exact text")
	require.Nil(t, got[0]["z"])
	require.Nil(t, got[1]["j"])
	require.Equal(t, 1e-7, got[1]["n"])
	require.Equal(t, []byte("[]"), appendBatchJSON(nil, cols, nil))
}
