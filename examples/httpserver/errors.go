package main

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/jobsmith/jobs"
)

// Codes of errors raised by the HTTP layer itself, next to the library's
// codes in the one table below.
const (
	codeBadRequest       jobs.Code = "bad_request"
	codeUnauthorized     jobs.Code = "unauthorized"
	codeForbidden        jobs.Code = "forbidden"
	codeRouteNotFound    jobs.Code = "route_not_found"
	codeMethodNotAllowed jobs.Code = "method_not_allowed"
	codeUnsupportedMedia jobs.Code = "unsupported_media_type"
	codeTooManyRequests  jobs.Code = "too_many_requests"
)

// codeInternal is the code jobs.CodeOf gives an error that is not the
// library's; the table below also uses it for every code it does not list.
const codeInternal jobs.Code = "internal"

// errorKind is one row of the mapping table: the status of a code and the
// message used when the error carries none that is safe to show.
type errorKind struct {
	status  int
	message string
	// showMsg allows the error's own Msg in the body. The library documents
	// Msg as safe for users; 5xx rows still hide it, so a body never
	// carries internal detail.
	showMsg bool
}

// errorTable maps every error code to its HTTP status. It is the only place
// that decides statuses; codes not listed are 500.
var errorTable = map[jobs.Code]errorKind{
	jobs.ErrInvalidArgument: {http.StatusBadRequest, "invalid argument", true},
	jobs.ErrUnknownKind:     {http.StatusBadRequest, "no handler for this job kind", true},
	jobs.ErrNotFound:        {http.StatusNotFound, "job not found", false},
	jobs.ErrConflict:        {http.StatusConflict, "the job's status does not allow this", true},
	jobs.ErrTooLarge:        {http.StatusRequestEntityTooLarge, "payload too large", true},
	jobs.ErrUnavailable:     {http.StatusServiceUnavailable, "storage is unavailable, retry later", false},
	jobs.ErrClosed:          {http.StatusServiceUnavailable, "the server is shutting down", false},
	// The job may or may not exist: only a retry that the server can
	// recognise as a repeat is safe.
	jobs.ErrOutcomeUnknown: {http.StatusServiceUnavailable,
		"the job may or may not have been created: retry with the same Idempotency-Key", false},

	codeBadRequest:       {http.StatusBadRequest, "bad request", true},
	codeUnauthorized:     {http.StatusUnauthorized, "authentication required", false},
	codeForbidden:        {http.StatusForbidden, "forbidden", true},
	codeRouteNotFound:    {http.StatusNotFound, "no such route", false},
	codeMethodNotAllowed: {http.StatusMethodNotAllowed, "method not allowed", false},
	codeUnsupportedMedia: {http.StatusUnsupportedMediaType, "Content-Type must be application/json", false},
	codeTooManyRequests:  {http.StatusTooManyRequests, "too many open streams, retry later", false},
	codeInternal:         {http.StatusInternalServerError, "internal error", false},
}

// errorBody is the JSON of every error response.
type errorBody struct {
	Code    jobs.Code    `json:"code"`
	Message string       `json:"message"`
	Details errorDetails `json:"details"`
}

type errorDetails struct {
	StatusCode int    `json:"status_code"`
	Field      string `json:"field,omitempty"` // the request field at fault, if known
}

// httpError builds an error of this layer with a message safe to show.
func httpError(code jobs.Code, msg string) error {
	return &jobs.Error{Code: code, Msg: msg}
}

// fieldError is a bad request naming the request field at fault.
type fieldError struct {
	field string
	msg   string
}

func (e *fieldError) Error() string { return e.field + ": " + e.msg }

// describeError returns the status and body for err, following errorTable.
func describeError(err error) (int, errorBody) {
	if fe, ok := errors.AsType[*fieldError](err); ok {
		return http.StatusBadRequest, errorBody{
			Code:    jobs.ErrInvalidArgument,
			Message: fe.Error(),
			Details: errorDetails{StatusCode: http.StatusBadRequest, Field: fe.field},
		}
	}
	code := jobs.CodeOf(err)
	kind, ok := errorTable[code]
	if !ok {
		code, kind = codeInternal, errorTable[codeInternal]
	}
	msg := kind.message
	if e, ok := errors.AsType[*jobs.Error](err); ok && kind.showMsg && kind.status < 500 && e.Msg != "" {
		msg = e.Msg
	}
	return kind.status, errorBody{Code: code, Message: msg, Details: errorDetails{StatusCode: kind.status}}
}

// writeError writes err as a JSON error response. Server-side failures are
// logged with their full text, which never reaches the client.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	status, body := describeError(err)
	if r.Context().Err() != nil && errors.Is(err, r.Context().Err()) {
		return // the client is gone: nobody to answer
	}
	if status >= 500 {
		log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
	h := w.Header()
	switch status {
	case http.StatusServiceUnavailable, http.StatusTooManyRequests:
		h.Set("Retry-After", strconv.Itoa(1))
	case http.StatusUnauthorized:
		h.Set("WWW-Authenticate", `Bearer realm="jobs"`)
	}
	writeJSON(w, status, body)
}

// writeJSON writes v with the given status. Encoding errors are the
// client's connection failing and are not reported.
func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
