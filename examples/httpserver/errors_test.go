package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

func TestErrorTable(t *testing.T) {
	t.Parallel()
	cause := errors.New("sqlite: disk I/O error at /tmp/db.go:3")
	tests := []struct {
		err    error
		status int
		code   jobs.Code
		msg    string
	}{
		{&jobs.Error{Code: jobs.ErrNotFound, Msg: "job 123 not found"}, 404, jobs.ErrNotFound, "job not found"},
		{&jobs.Error{Code: jobs.ErrInvalidArgument, Msg: "kind is empty"}, 400, jobs.ErrInvalidArgument, "kind is empty"},
		{&jobs.Error{Code: jobs.ErrInvalidArgument}, 400, jobs.ErrInvalidArgument, "invalid argument"},
		{&jobs.Error{Code: jobs.ErrConflict, Msg: "job already finished"}, 409, jobs.ErrConflict, "job already finished"},
		{&jobs.Error{Code: jobs.ErrTooLarge, Msg: "payload is 2 bytes"}, 413, jobs.ErrTooLarge, "payload is 2 bytes"},
		{&jobs.Error{Code: jobs.ErrUnknownKind, Msg: `no handler for "x"`}, 400, jobs.ErrUnknownKind, `no handler for "x"`},
		{&jobs.Error{Code: jobs.ErrUnavailable, Msg: "db busy", Err: cause}, 503, jobs.ErrUnavailable, "storage is unavailable, retry later"},
		{&jobs.Error{Code: jobs.ErrClosed}, 503, jobs.ErrClosed, "the server is shutting down"},
		{&jobs.Error{Code: jobs.ErrOutcomeUnknown, Msg: "could not confirm", Err: cause}, 503, jobs.ErrOutcomeUnknown,
			"the job may or may not have been created: retry with the same Idempotency-Key"},
		{&jobs.Error{Code: jobs.ErrLeaseLost}, 500, codeInternal, "internal error"},
		{fmt.Errorf("wrapped: %w", &jobs.Error{Code: jobs.ErrNotFound}), 404, jobs.ErrNotFound, "job not found"},
		{cause, 500, codeInternal, "internal error"},
		{&fieldError{field: "language", msg: "is bad"}, 400, jobs.ErrInvalidArgument, "language: is bad"},
		{httpError(codeUnauthorized, "secret detail"), 401, codeUnauthorized, "authentication required"},
		{httpError(codeForbidden, "cross-origin request refused"), 403, codeForbidden, "cross-origin request refused"},
		{httpError(codeUnsupportedMedia, ""), 415, codeUnsupportedMedia, "Content-Type must be application/json"},
	}
	for _, tt := range tests {
		status, body := describeError(tt.err)
		require.Equal(t, tt.status, status, "%v", tt.err)
		require.Equal(t, tt.code, body.Code, "%v", tt.err)
		require.Equal(t, tt.msg, body.Message, "%v", tt.err)
		require.Equal(t, tt.status, body.Details.StatusCode)
	}
	for code, kind := range errorTable {
		require.NotEmpty(t, kind.message, code)
		require.False(t, kind.status >= 500 && kind.showMsg, "%s: 5xx rows never show the error's text", code)
	}
}

func TestWriteErrorHeaders(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest("GET", "/", nil)
	for code, header := range map[jobs.Code]string{
		jobs.ErrUnavailable:    "Retry-After",
		jobs.ErrOutcomeUnknown: "Retry-After",
		codeTooManyRequests:    "Retry-After",
		codeUnauthorized:       "WWW-Authenticate",
	} {
		w := httptest.NewRecorder()
		writeError(w, r, slog.New(slog.DiscardHandler), httpError(code, ""))
		require.NotEmpty(t, w.Header().Get(header), code)
		require.Equal(t, "no-store", w.Header().Get("Cache-Control"))
	}
	w := httptest.NewRecorder()
	writeError(w, r, slog.New(slog.DiscardHandler), httpError(jobs.ErrNotFound, ""))
	require.Equal(t, http.StatusNotFound, w.Code)
	require.JSONEq(t, `{"code":"not_found","message":"job not found","details":{"status_code":404}}`, w.Body.String())
}
