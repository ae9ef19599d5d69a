package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs/internal/rules"
	"github.com/stretchr/testify/require"
)

func TestDecodeJSONMessages(t *testing.T) {
	t.Parallel()
	type target struct {
		Name  string `json:"name"`
		Count int    `json:"count"`
		On    bool   `json:"on"`
		List  []int  `json:"list"`
	}
	tests := []struct {
		body, field, msg string
	}{
		{`{"count":"three"}`, "count", "count: must be a whole number"},
		{`{"count":1.5}`, "count", "count: must be a whole number"},
		{`{"name":1}`, "name", "name: must be a string"},
		{`{"on":"yes"}`, "on", "on: must be true or false"},
		{`{"list":{}}`, "list", "list: must be an array"},
		{`{"nope":1}`, "nope", "nope: unknown field"},
		{`{"name":"a"}{"name":"b"}`, "", "request body has data after the JSON value"},
		{`{"name":"a"`, "", "request body ends in the middle of the JSON value"},
		{`{"name":'a'}`, "", "request body is not valid JSON (at byte 9)"},
		{``, "", "request body is empty"},
		{`"str"`, "", "request body must be a JSON object"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("POST", "/", strings.NewReader(tt.body))
		r.Header.Set("Content-Type", "application/json")
		var v target
		err := decodeJSON(httptest.NewRecorder(), r, 1<<10, &v)
		status, body := describeError(err)
		require.Equal(t, http.StatusBadRequest, status, tt.body)
		require.Equal(t, tt.field, body.Details.Field, tt.body)
		require.Equal(t, tt.msg, body.Message, tt.body)
	}
}

func TestJobIDAndKey(t *testing.T) {
	t.Parallel()
	id := uuid.New()
	r := httptest.NewRequest("GET", "/", nil)
	r.SetPathValue("id", id.String())
	got, err := jobID(r)
	require.NoError(t, err)
	require.Equal(t, id, got)
	r.SetPathValue("id", strings.ToUpper(id.String()))
	got, err = jobID(r)
	require.NoError(t, err, "hex digits in either case")
	require.Equal(t, id, got)

	r.Header.Set("Idempotency-Key", "order-42")
	k, err := idempotencyKey(r)
	require.NoError(t, err)
	require.Equal(t, "order-42", k)
	for _, bad := range []string{"tab\there", "ünï", strings.Repeat("k", rules.MaxUniqueKeyLength+1)} {
		r.Header.Set("Idempotency-Key", bad)
		_, err := idempotencyKey(r)
		require.Error(t, err, bad)
	}
}

func TestOutputAfter(t *testing.T) {
	t.Parallel()
	for q, want := range map[string]int64{"": 0, "?after=": 0, "?after=0": 0, "?after=42": 42, "?after=9223372036854775807": 1<<63 - 1} {
		n, err := outputAfter(httptest.NewRequest("GET", "/ws/jobs/x"+q, nil))
		require.NoError(t, err, q)
		require.Equal(t, want, n, q)
	}
	for _, v := range []string{"-1", "+1", "x", "1e3", "9223372036854775808"} {
		_, err := outputAfter(httptest.NewRequest("GET", "/ws/jobs/x?after="+v, nil))
		require.ErrorContains(t, err, "after", v)
	}
}

func FuzzDecodeTranscribeRequest(f *testing.F) {
	f.Add(`{"audio_url":"tone:5s","language":"en"}`)
	f.Add(`{"audio_url":"file:a.wav"}`)
	f.Add(`[[[[`)
	f.Fuzz(func(t *testing.T, body string) {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("POST", "/api/transcribe", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		var req struct {
			AudioURL string `json:"audio_url"`
			Language string `json:"language"`
		}
		if err := decodeJSON(w, r, maxSmallBody, &req); err != nil {
			status, eb := describeError(err)
			require.Less(t, status, 500)
			require.False(t, leak.MatchString(eb.Message), eb.Message)
		}
	})
}
