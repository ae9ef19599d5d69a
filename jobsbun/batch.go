package jobsbun

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// A batch write on PostgreSQL passes its rows as one JSON array bound to one
// placeholder, which jsonb_to_recordset turns into a typed table (see
// sqlDialect.batchTable): the statement's text has the same shape for 1 row
// or 1 000, and the values travel as data, never as SQL.

// batchCol is one column of a batch table: its name (also the JSON key) and
// its PostgreSQL type.
type batchCol struct {
	name   string
	pgType string
}

// leaseCols are the leading columns of every fenced batch.
var leaseCols = []batchCol{{"d_id", "uuid"}, {"d_token", "text"}}

// sqlTimeLayout is the text form of timestamps on SQLite, the one bun
// writes: UTC to the microsecond, so text order is time order.
const sqlTimeLayout = "2006-01-02 15:04:05.999999-07:00"

// appendBatchJSON appends rows as a JSON array of objects keyed by the
// column names. Values may be string, int, int64, float64 (finite), bool,
// time.Time, []byte holding JSON text (sent as a string), jsonItems or nil.
func appendBatchJSON(b []byte, cols []batchCol, rows [][]any) []byte {
	b = append(b, '[')
	for i, row := range rows {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		for j, v := range row {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, cols[j].name)
			b = append(b, ':')
			switch v := v.(type) {
			case nil:
				b = append(b, "null"...)
			case string:
				b = appendJSONString(b, v)
			case []byte:
				if v == nil {
					b = append(b, "null"...)
				} else {
					b = appendJSONString(b, string(v))
				}
			case int:
				b = strconv.AppendInt(b, int64(v), 10)
			case int64:
				b = strconv.AppendInt(b, v, 10)
			case float64:
				b = strconv.AppendFloat(b, v, 'g', -1, 64)
			case bool:
				b = strconv.AppendBool(b, v)
			case jsonItems:
				b = v.appendJSON(b)
			case time.Time:
				b = append(b, '"')
				b = v.UTC().AppendFormat(b, sqlTimeLayout)
				b = append(b, '"')
			default:
				panic("jobs: unsupported batch value type") // programmer error: callers pass the types above
			}
		}
		b = append(b, '}')
	}
	return append(b, ']')
}

// jsonItems are output items, each one valid JSON value (checked by
// [jobs.ProgressUpdate.Validate] and [jobs.Completion.Validate]), sent in
// a batch as one JSON array of them, as they are: PostgreSQL parses each
// once, into jsonb, as it parses a payload. nil is sent as null.
type jsonItems []json.RawMessage

// appendJSON appends the items as a JSON array. JSON lets invalid UTF-8
// occur only inside strings, where it becomes U+FFFD, as in
// appendJSONString: PostgreSQL refuses a parameter that is not UTF-8.
func (items jsonItems) appendJSON(b []byte) []byte {
	if items == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		if utf8.Valid(it) {
			b = append(b, it...)
		} else {
			b = append(b, bytes.ToValidUTF8(it, []byte("\ufffd"))...)
		}
	}
	return append(b, ']')
}

// itemBytes is the size of items.
func itemBytes(items []json.RawMessage) int {
	n := 0
	for _, it := range items {
		n += len(it)
	}
	return n
}

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes
// U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
