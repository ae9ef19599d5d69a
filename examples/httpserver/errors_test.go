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
		{&jobs.Error{Code: jobs.CodeNotFound, Msg: "job 123 not found"}, 404, jobs.CodeNotFound, "job not found"},
		{&jobs.Error{Code: jobs.CodeInvalidArgument, Msg: "kind is empty"}, 400, jobs.CodeInvalidArgument, "kind is empty"},
		{&jobs.Error{Code: jobs.CodeInvalidArgument}, 400, jobs.CodeInvalidArgument, "invalid argument"},
		{&jobs.Error{Code: jobs.CodeConflict, Msg: "job already finished"}, 409, jobs.CodeConflict, "job already finished"},
		{&jobs.Error{Code: jobs.CodeTooLarge, Msg: "payload is 2 bytes"}, 413, jobs.CodeTooLarge, "payload is 2 bytes"},
		{&jobs.Error{Code: jobs.CodeUnknownKind, Msg: `no handler for "x"`}, 400, jobs.CodeUnknownKind, `no handler for "x"`},
		{&jobs.Error{Code: jobs.CodeUnavailable, Msg: "db busy", Err: cause}, 503, jobs.CodeUnavailable, "storage is unavailable, retry later"},
		{&jobs.Error{Code: jobs.CodeClosed}, 503, jobs.CodeClosed, "the server is shutting down"},
		{&jobs.Error{Code: jobs.CodeOutcomeUnknown, Msg: "could not confirm", Err: cause}, 503, jobs.CodeOutcomeUnknown,
			"the job may or may not have been created: retry with the same Idempotency-Key"},
		{&jobs.Error{Code: jobs.CodeMisconfigured, Msg: "pragma", Err: cause}, 500, jobs.CodeMisconfigured, "internal error"},
		{&jobs.Error{Code: jobs.CodeLeaseLost}, 500, jobs.CodeInternal, "internal error"},
		{fmt.Errorf("wrapped: %w", &jobs.Error{Code: jobs.CodeNotFound}), 404, jobs.CodeNotFound, "job not found"},
		{cause, 500, jobs.CodeInternal, "internal error"},
		{&fieldError{field: "language", msg: "is bad"}, 400, jobs.CodeInvalidArgument, "language: is bad"},
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
		jobs.CodeUnavailable:    "Retry-After",
		jobs.CodeOutcomeUnknown: "Retry-After",
		codeTooManyRequests:     "Retry-After",
		codeUnauthorized:        "WWW-Authenticate",
	} {
		w := httptest.NewRecorder()
		writeError(w, r, slog.New(slog.DiscardHandler), httpError(code, ""))
		require.NotEmpty(t, w.Header().Get(header), code)
		require.Equal(t, "no-store", w.Header().Get("Cache-Control"))
	}
	w := httptest.NewRecorder()
	writeError(w, r, slog.New(slog.DiscardHandler), httpError(jobs.CodeNotFound, ""))
	require.Equal(t, http.StatusNotFound, w.Code)
	require.JSONEq(t, `{"code":"not_found","message":"job not found","details":{"status_code":404}}`, w.Body.String())
}
