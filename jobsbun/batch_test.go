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

func TestJSONItemsAreOneJSONArray(t *testing.T) {
	t.Parallel()
	cols := []batchCol{{"d_items", "jsonb"}, {"d_none", "jsonb"}}
	out := appendBatchJSON(nil, cols, [][]any{{
		jsonItems{json.RawMessage(" {\"a\": \"b\xffc\"} "), json.RawMessage(`2`)}, jsonItems(nil)}})
	require.True(t, json.Valid(out), string(out))
	var rows []struct {
		Items []any `json:"d_items"`
		None  []any `json:"d_none"`
	}
	require.NoError(t, json.Unmarshal(out, &rows))
	require.Equal(t, []any{map[string]any{"a": "b\ufffdc"}, 2.0}, rows[0].Items, "invalid UTF-8 becomes U+FFFD")
	require.Nil(t, rows[0].None)
}

// TestOutputBatchesSplitByBytesOnPostgres checks that a fenced batch with
// output puts at most about outputStmtBytes of items in one PostgreSQL
// statement (at least one row), and splits only by rows on SQLite, which
// appends items with statements of their own.
func TestOutputBatchesSplitByBytesOnPostgres(t *testing.T) {
	t.Parallel()
	big := json.RawMessage(make([]byte, outputStmtBytes/2+1))
	rows := []fencedRow{{items: []json.RawMessage{big}}, {items: []json.RawMessage{big}},
		{items: []json.RawMessage{big, big, big}}, {}, {}}
	b := fencedBatch{rows: rows, output: true}
	require.Equal(t, [][2]int{{0, 1}, {1, 2}, {2, 3}, {3, 5}}, b.chunks(sqlDialect{pg: true}))
	require.Equal(t, [][2]int{{0, 5}}, b.chunks(sqlDialect{}))
	b.output = false
	require.Equal(t, [][2]int{{0, 5}}, b.chunks(sqlDialect{pg: true}))
}
