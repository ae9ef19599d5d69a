package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
)

// Request body limits.
const (
	// maxJobBody bounds POST /api/jobs: the repository's default payload
	// limit (1 MiB) plus room for the envelope, so that an over-limit
	// payload inside a readable body gets the library's too_large answer.
	maxJobBody = 1<<20 + 16<<10
	// maxUniqueKey is the library's limit on a unique key, in bytes.
	maxUniqueKey = 256
	// maxUser is the library's limit on a concurrency key, in bytes: the
	// longest "user" of a job.
	maxUser = 128
	// maxListLimit is the largest page that List serves.
	maxListLimit = 1000
	// maxSmallBody bounds the other JSON bodies.
	maxSmallBody = 16 << 10
)

// decodeJSON reads one JSON value from r's body into v, strictly: the
// Content-Type must be application/json (415), the body at most limit bytes
// (413), unknown fields and trailing data are refused (400). Errors name the
// field at fault and never quote the parser's internals.
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return httpError(codeUnsupportedMedia, "")
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return decodeError(err)
		}
		return httpError(codeBadRequest, "request body has data after the JSON value")
	}
	return nil
}

// decodeError turns a json or body error into a user-facing error.
func decodeError(err error) error {
	if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return httpError(jobs.ErrTooLarge, fmt.Sprintf("request body is larger than %d bytes", mbe.Limit))
	}
	if ute, ok := errors.AsType[*json.UnmarshalTypeError](err); ok && ute.Field != "" {
		return &fieldError{field: ute.Field, msg: "must be " + jsonKind(ute.Type.Kind().String())}
	}
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return httpError(codeBadRequest, fmt.Sprintf("request body is not valid JSON (at byte %d)", se.Offset))
	}
	switch msg := err.Error(); {
	case errors.Is(err, io.EOF):
		return httpError(codeBadRequest, "request body is empty")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return httpError(codeBadRequest, "request body ends in the middle of the JSON value")
	case strings.HasPrefix(msg, "json: unknown field "):
		name, _ := strconv.Unquote(strings.TrimPrefix(msg, "json: unknown field "))
		return &fieldError{field: clip(name, 64), msg: "unknown field"}
	}
	return httpError(codeBadRequest, "request body must be a JSON object")
}

// jsonKind names a Go kind the way a JSON user thinks of it.
func jsonKind(k string) string {
	switch {
	case strings.HasPrefix(k, "int"), strings.HasPrefix(k, "uint"):
		return "a whole number"
	case strings.HasPrefix(k, "float"):
		return "a number"
	case k == "string":
		return "a string"
	case k == "bool":
		return "true or false"
	case k == "slice", k == "array":
		return "an array"
	}
	return "an object"
}

// jobID parses the {id} path value: a canonical UUID of 36 characters.
// Anything else is a 400 before any storage is touched.
func jobID(r *http.Request) (uuid.UUID, error) {
	s := r.PathValue("id")
	if len(s) != 36 {
		return uuid.Nil, &fieldError{field: "id", msg: "must be a job ID such as 01890a5d-ac96-774b-bcce-b302099a8057"}
	}
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil, &fieldError{field: "id", msg: "must be a job ID such as 01890a5d-ac96-774b-bcce-b302099a8057"}
	}
	return id, nil
}

// idempotencyKey validates the Idempotency-Key header: printable ASCII, at
// most maxUniqueKey bytes. "" means none.
func idempotencyKey(r *http.Request) (string, error) {
	k := r.Header.Get("Idempotency-Key")
	if len(k) > maxUniqueKey || strings.ContainsFunc(k, func(c rune) bool { return c < 0x20 || c > 0x7e }) {
		return "", &fieldError{field: "Idempotency-Key", msg: fmt.Sprintf("must be at most %d printable ASCII characters", maxUniqueKey)}
	}
	return k, nil
}

// listQuery parses the query of GET /api/jobs.
func listQuery(r *http.Request) (jobs.ListQuery, error) {
	q := r.URL.Query()
	var lq jobs.ListQuery
	for name := range q {
		switch name {
		case "status", "kind", "queue", "limit", "cursor":
		default:
			return lq, &fieldError{field: clip(name, 64), msg: "unknown query parameter (use status, kind, queue, limit, cursor)"}
		}
	}
	for _, v := range q["status"] {
		for s := range strings.SplitSeq(v, ",") {
			st := jobs.Status(strings.TrimSpace(s))
			if st == "" {
				continue // an empty filter, as a form sends it
			}
			if !st.Valid() {
				return lq, &fieldError{field: "status", msg: "must be waiting, pending, running, succeeded, failed or canceled"}
			}
			lq.Statuses = append(lq.Statuses, st)
		}
	}
	lq.Kind, lq.Queue, lq.Cursor = q.Get("kind"), q.Get("queue"), q.Get("cursor")
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxListLimit {
			return lq, &fieldError{field: "limit", msg: fmt.Sprintf("must be a whole number from 1 to %d", maxListLimit)}
		}
		lq.Limit = n
	}
	if lq.Cursor != "" {
		if _, err := uuid.Parse(lq.Cursor); err != nil || len(lq.Cursor) != 36 {
			return lq, &fieldError{field: "cursor", msg: "must be the next value of a previous page"}
		}
	}
	return lq, nil
}

// outputAfter reads the "after" query parameter of a stream: the sequence
// number of the last output item the client has, 0 (for all) when absent.
func outputAfter(r *http.Request) (int64, error) {
	v := r.URL.Query().Get("after")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 63) // no sign, at most MaxInt64
	if err != nil {
		return 0, &fieldError{field: "after", msg: "must be the seq of an output item, a whole number from 0"}
	}
	return int64(n), nil
}

// clip shortens s to at most n bytes for an error message.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
