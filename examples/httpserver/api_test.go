package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/examples/internal/transcribe"
	"github.com/jobsmith/jobs/internal/rules"
	"github.com/stretchr/testify/require"
)

func TestCreateTranscription(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{noRun: true})
	res, body := e.do("POST", "/api/transcribe", `{"audio_url":"tone:5s","language":"en"}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, "body: %s", body)
	job := decodeJob(t, body)
	require.Equal(t, "/api/jobs/"+job.ID.String(), res.Header.Get("Location"))
	require.Equal(t, "transcribe", job.Kind)
	require.Equal(t, jobs.StatusPending, job.Status)
	require.JSONEq(t, `{"audio_url":"tone:5s","language":"en"}`, string(job.Payload))

	// Idempotency-Key: a repeat returns the same job with 200.
	res, body = e.do("POST", "/api/transcribe", `{"audio_url":"tone:5s"}`, "Idempotency-Key", "k-1")
	require.Equal(t, http.StatusCreated, res.StatusCode)
	first := decodeJob(t, body)
	res, body = e.do("POST", "/api/transcribe", `{"audio_url":"tone:5s"}`, "Idempotency-Key", "k-1")
	require.Equal(t, http.StatusOK, res.StatusCode)
	again := decodeJob(t, body)
	require.Equal(t, first.ID, again.ID)
	require.True(t, again.Duplicate)
	res, body = e.do("POST", "/api/transcribe", `{"audio_url":"tone:5s"}`, "Idempotency-Key", "k-2")
	require.Equal(t, http.StatusCreated, res.StatusCode)
	require.NotEqual(t, first.ID, decodeJob(t, body).ID)

	res, body = e.do("POST", "/api/transcribe", `{"audio_url":"tone:5s"}`, "Idempotency-Key", strings.Repeat("k", 300))
	eb := requireError(t, res, body, http.StatusBadRequest, jobs.ErrInvalidArgument)
	require.Equal(t, "Idempotency-Key", eb.Details.Field)
}

func TestCreateTranscriptionBadFields(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{noRun: true})
	tests := []struct {
		body, field string
	}{
		{`{}`, "audio_url"},
		{`{"audio_url":"http://169.254.169.254/latest.wav"}`, "audio_url"},
		{`{"audio_url":"../../etc/passwd.wav"}`, "audio_url"},
		{`{"audio_url":"tone:99h"}`, "audio_url"},
		{`{"audio_url":"tone:5s","language":"'; DROP TABLE jobs;--"}`, "language"},
		{`{"audio_url":5}`, "audio_url"},
		{`{"audio_url":"tone:5s","speed":2}`, "speed"},
	}
	for _, tt := range tests {
		res, body := e.do("POST", "/api/transcribe", tt.body)
		eb := requireError(t, res, body, http.StatusBadRequest, jobs.ErrInvalidArgument)
		require.Equal(t, tt.field, eb.Details.Field, tt.body)
		require.Contains(t, eb.Message, tt.field)
	}
}

func TestCreateJobGeneric(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{noRun: true})
	res, body := e.do("POST", "/api/jobs", `{"kind":"transcribe","payload":{"audio_url":"tone:2s"},"priority":5,"max_attempts":2,"queue":"audio"}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, "body: %s", body)
	job := decodeJob(t, body)
	require.Equal(t, 5, job.Priority)
	require.Equal(t, 2, job.MaxAttempts)
	require.Equal(t, "audio", job.Queue)

	res, body = e.do("POST", "/api/jobs", `{"kind":"transcribe","payload":{"audio_url":"tone:2s"}}`, "Idempotency-Key", "g-1")
	require.Equal(t, http.StatusCreated, res.StatusCode)
	id := decodeJob(t, body).ID
	res, body = e.do("POST", "/api/jobs", `{"kind":"transcribe","payload":{"audio_url":"tone:2s"}}`, "Idempotency-Key", "g-1")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, id, decodeJob(t, body).ID)

	tests := []struct {
		body   string
		status int
		code   jobs.Code
		field  string
	}{
		{`{"payload":{}}`, 400, jobs.ErrInvalidArgument, "kind"},
		{`{"kind":"resize","payload":{}}`, 400, jobs.ErrUnknownKind, ""},
		{`{"kind":"transcribe","payload":{"audio_url":"ftp://x"}}`, 400, jobs.ErrInvalidArgument, "payload.audio_url"},
		{`{"kind":"transcribe","payload":{"audio_url":"tone:2s","x":1}}`, 400, jobs.ErrInvalidArgument, "payload"},
		{`{"kind":"transcribe","payload":[1,2]}`, 400, jobs.ErrInvalidArgument, "payload"},
		{`{"kind":"transcribe","max_attempts":-1}`, 400, jobs.ErrInvalidArgument, "max_attempts"},
		{`{"kind":"transcribe","payload":{"audio_url":"tone:2s"},"queue":"` + strings.Repeat("q", 200) + `"}`, 400, jobs.ErrInvalidArgument, ""},
		{`{"kind":"` + strings.Repeat("k", 200) + `"}`, 400, jobs.ErrInvalidArgument, ""},
	}
	for _, tt := range tests {
		res, body := e.do("POST", "/api/jobs", tt.body)
		eb := requireError(t, res, body, tt.status, tt.code)
		require.Equal(t, tt.field, eb.Details.Field, tt.body)
	}
}

// TestPayloadLimits: a payload just under the library's limit is accepted,
// one over it inside a readable body is the library's too_large, and a body
// over the HTTP limit is cut by http.MaxBytesReader; both are 413 (BI-3).
func TestPayloadLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{noRun: true})
	payload := func(n int) string { return `"` + strings.Repeat("a", n-2) + `"` } // a JSON string of n bytes
	res, body := e.do("POST", "/api/jobs", `{"kind":"echo","payload":`+payload(rules.MaxPayloadBytes)+`}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, "a payload of exactly the limit is accepted: %.200s", body)
	res, body = e.do("POST", "/api/jobs", `{"kind":"echo","payload":`+payload(rules.MaxPayloadBytes+1)+`}`)
	requireError(t, res, body, http.StatusRequestEntityTooLarge, jobs.ErrTooLarge)
	res, body = e.do("POST", "/api/jobs", `{"kind":"echo","payload":`+payload(maxJobBody)+`}`)
	eb := requireError(t, res, body, http.StatusRequestEntityTooLarge, jobs.ErrTooLarge)
	require.Contains(t, eb.Message, "larger than")
	res, body = e.do("POST", "/api/transcribe", `{"audio_url":"`+strings.Repeat("a", maxSmallBody)+`"}`)
	requireError(t, res, body, http.StatusRequestEntityTooLarge, jobs.ErrTooLarge)
}

func TestStrictDecoding(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{noRun: true})
	tests := []struct {
		name, contentType, body string
		status                  int
		code                    jobs.Code
	}{
		{"no content type", "", `{"audio_url":"tone:1s"}`, 415, codeUnsupportedMedia},
		{"text/plain", "text/plain", `{"audio_url":"tone:1s"}`, 415, codeUnsupportedMedia},
		{"form", "application/x-www-form-urlencoded", `audio_url=tone:1s`, 415, codeUnsupportedMedia},
		{"charset ok but trailing object", "application/json; charset=utf-8", `{"audio_url":"tone:1s"}{}`, 400, codeBadRequest},
		{"trailing garbage", "application/json", `{"audio_url":"tone:1s"} x`, 400, codeBadRequest},
		{"syntax", "application/json", `{"audio_url":`, 400, codeBadRequest},
		{"not json", "application/json", `hello`, 400, codeBadRequest},
		{"empty", "application/json", ``, 400, codeBadRequest},
		{"array", "application/json", `[1]`, 400, codeBadRequest},
		{"deep nesting", "application/json", strings.Repeat("[", 10001) + strings.Repeat("]", 10001), 400, codeBadRequest},
		{"nul in value", "application/json", `{"audio_url":"tone:1s\u0000"}`, 400, jobs.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequestWithContext(t.Context(), "POST", e.url+"/api/transcribe", strings.NewReader(tt.body))
			require.NoError(t, err)
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			res, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer res.Body.Close()
			body, err := io.ReadAll(res.Body)
			require.NoError(t, err)
			eb := requireError(t, res, body, tt.status, tt.code)
			require.NotContains(t, eb.Message, "invalid character", "no parser internals")
		})
	}
}

func TestGetAndList(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{noRun: true})
	var ids []uuid.UUID
	for i := range 3 {
		ids = append(ids, e.createTranscription(fmt.Sprintf("tone:%ds", i+1)).ID)
	}
	res, body := e.do("GET", "/api/jobs/"+ids[1].String(), "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, ids[1], decodeJob(t, body).ID)

	res, body = e.do("GET", "/api/jobs/"+uuid.NewString(), "")
	requireError(t, res, body, http.StatusNotFound, jobs.ErrNotFound)

	var page jobs.Page
	res, body = e.do("GET", "/api/jobs?limit=2&kind=transcribe&status=pending,running", "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.NoError(t, json.Unmarshal(body, &page))
	require.Len(t, page.Jobs, 2)
	require.Equal(t, ids[2], page.Jobs[0].ID, "newest first")
	require.NotEmpty(t, page.Next)
	res, body = e.do("GET", "/api/jobs?limit=2&cursor="+url.QueryEscape(page.Next), "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	page = jobs.Page{}
	require.NoError(t, json.Unmarshal(body, &page))
	require.Len(t, page.Jobs, 1)
	require.Equal(t, ids[0], page.Jobs[0].ID)
	require.Empty(t, page.Next)

	res, body = e.do("GET", "/api/jobs?status=&kind=&queue=&limit=&cursor=", "")
	require.Equal(t, http.StatusOK, res.StatusCode, "empty parameters filter nothing: %s", body)
	page = jobs.Page{}
	require.NoError(t, json.Unmarshal(body, &page))
	require.Len(t, page.Jobs, 3)

	res, body = e.do("GET", "/api/jobs?status=succeeded", "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.JSONEq(t, `{"jobs":[]}`, string(body), "an empty page is an empty array")

	for q, field := range map[string]string{
		"status=done":                       "status",
		"limit=0":                           "limit",
		"limit=1001":                        "limit",
		"limit=abc":                         "limit",
		"cursor=abc":                        "cursor",
		"cursor=" + strings.Repeat("9", 36): "cursor",
		"sort=" + url.QueryEscape("id; DROP TABLE jobs"): "sort",
	} {
		res, body := e.do("GET", "/api/jobs?"+q, "")
		eb := requireError(t, res, body, http.StatusBadRequest, jobs.ErrInvalidArgument)
		require.Equal(t, field, eb.Details.Field, q)
	}
	res, body = e.do("GET", "/api/jobs?kind="+url.QueryEscape(`'; DROP TABLE jobs;--`), "")
	require.Equal(t, http.StatusOK, res.StatusCode, "injection-looking filters are values: %s", body)
	res, _ = e.do("GET", "/api/jobs/"+ids[0].String(), "")
	require.Equal(t, http.StatusOK, res.StatusCode, "table intact")
}

// The job JSON shows the transcription's checkpoint and the number of its
// output items (jobs.Job's checkpoint and output_seq), and neither before
// the job has any.
func TestGetJobShowsCheckpointAndOutputSeq(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	job := e.createTranscription("tone:3s") // 6 segments
	_, err := e.runner.Await(t.Context(), job.ID)
	require.NoError(t, err)
	res, body := e.do("GET", "/api/jobs/"+job.ID.String(), "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	var got struct {
		Status     jobs.Status
		OutputSeq  *int64            `json:"output_seq"`
		Checkpoint *transcribe.State `json:"checkpoint"`
	}
	require.NoError(t, json.Unmarshal(body, &got), "body: %s", body)
	require.Equal(t, jobs.StatusSucceeded, got.Status)
	require.NotNil(t, got.OutputSeq, "body: %s", body)
	require.Equal(t, int64(6), *got.OutputSeq, "one output item per segment")
	require.NotNil(t, got.Checkpoint, "body: %s", body)
	require.Equal(t, 5, got.Checkpoint.Next, "the last checkpoint follows segment 5; the outcome stored segment 6")
	require.Equal(t, int64(transcribe.ToneSampleRate/2), got.Checkpoint.SegmentFrames)
	require.Equal(t, "speech (1.5 s) silence (0.5 s) speech (0.5 s)", got.Checkpoint.Text.String(), "the text of segments 1 to 5")

	e = newEnv(t, envOptions{noRun: true})
	res, body = e.do("GET", "/api/jobs/"+e.createTranscription("tone:3s").ID.String(), "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	var raw map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(body, &raw))
	require.NotContains(t, raw, "checkpoint", "a job that never ran has none")
	require.NotContains(t, raw, "output_seq")
}

func TestCancelPendingAndConflict(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{noRun: true})
	job := e.createTranscription("tone:1s")
	res, body := e.do("POST", "/api/jobs/"+job.ID.String()+"/cancel", "")
	require.Equal(t, http.StatusOK, res.StatusCode, "body: %s", body)
	require.Equal(t, jobs.StatusCanceled, decodeJob(t, body).Status)

	res, body = e.do("POST", "/api/jobs/"+job.ID.String()+"/cancel", "")
	requireError(t, res, body, http.StatusConflict, jobs.ErrConflict)
	res, body = e.do("POST", "/api/jobs/"+uuid.NewString()+"/cancel", "")
	requireError(t, res, body, http.StatusNotFound, jobs.ErrNotFound)
}

// TestMalformedIDs: syntactically invalid IDs are 400 on every route with
// an {id}, and never reach the repository (BI-8).
func TestMalformedIDs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{noRun: true})
	bad := []string{"abc", "-1", "0", "9223372036854775808", "1e3", "%00", "..%2f", "%C3%BC",
		strings.Repeat("a", 10<<10), "{" + uuid.NewString() + "}", strings.ReplaceAll(uuid.NewString(), "-", ""),
		"urn:uuid:" + uuid.NewString(), uuid.NewString() + "%20"}
	before := e.repo.calls.Load()
	for _, id := range bad {
		for _, route := range []struct{ method, path string }{
			{"GET", "/api/jobs/" + id},
			{"POST", "/api/jobs/" + id + "/cancel"},
			{"GET", "/api/jobs/" + id + "/events"},
			{"GET", "/ws/jobs/" + id},
		} {
			res, body := e.do(route.method, route.path, "")
			eb := requireError(t, res, body, http.StatusBadRequest, jobs.ErrInvalidArgument)
			require.Equal(t, "id", eb.Details.Field, "%s %.40s", route.method, route.path)
		}
	}
	require.Equal(t, before, e.repo.calls.Load(), "no repository call for a malformed ID")

	// An empty ID matches no route, or is redirected to a cleaned path that
	// is then refused: never a 500.
	for _, p := range []string{"/api/jobs/", "/ws/jobs/", "/api/jobs//events"} {
		res, body := e.do("GET", p, "")
		require.Contains(t, []int{http.StatusBadRequest, http.StatusNotFound}, res.StatusCode, "%s: %s", p, body)
	}
}

// unavailableRepo fails every call the way a locked or unreachable database
// does, with driver text in the cause.
type unavailableRepo struct{ jobs.JobRepository }

func (unavailableRepo) err() error {
	return &jobs.Error{Code: jobs.ErrUnavailable, Op: "get", Msg: "database is busy",
		Err: errors.New("sqlite: database is locked (5) (SQLITE_BUSY) at /tmp/x/bun.go:12")}
}
func (u unavailableRepo) Get(context.Context, uuid.UUID) (*jobs.Job, error) { return nil, u.err() }
func (u unavailableRepo) List(context.Context, jobs.ListQuery) (*jobs.Page, error) {
	return nil, u.err()
}
func (u unavailableRepo) Create(context.Context, ...*jobs.Job) error { return u.err() }
func (u unavailableRepo) RequestCancel(context.Context, uuid.UUID) (*jobs.Job, error) {
	return nil, u.err()
}

// internalRepo fails with an error that is not a *jobs.Error.
type internalRepo struct{ jobs.JobRepository }

func (internalRepo) Get(context.Context, uuid.UUID) (*jobs.Job, error) {
	return nil, errors.New(`pq: relation "jobs" does not exist (SQLSTATE 42P01) goroutine 7 [running]: main.go:42`)
}

func TestStorageErrorsDoNotLeak(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{noRun: true, wrap: func(r jobs.JobRepository) jobs.JobRepository { return unavailableRepo{r} }})
	id := uuid.NewString()
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/api/jobs/" + id, ""},
		{"GET", "/api/jobs", ""},
		{"POST", "/api/transcribe", `{"audio_url":"tone:1s"}`},
		{"POST", "/api/jobs/" + id + "/cancel", ""},
		{"GET", "/api/jobs/" + id + "/events", ""},
		{"GET", "/ws/jobs/" + id, ""},
		{"GET", "/healthz", ""},
	} {
		res, body := e.do(r.method, r.path, r.body)
		eb := requireError(t, res, body, http.StatusServiceUnavailable, jobs.ErrUnavailable)
		require.Equal(t, "1", res.Header.Get("Retry-After"))
		require.NotContains(t, eb.Message, "busy", "5xx bodies carry the table's message only")
	}

	e = newEnv(t, envOptions{noRun: true, wrap: func(r jobs.JobRepository) jobs.JobRepository { return internalRepo{r} }})
	res, body := e.do("GET", "/api/jobs/"+id, "")
	requireError(t, res, body, http.StatusInternalServerError, codeInternal)
}

// BenchmarkCreateTranscription measures POST /api/transcribe end to end
// (HTTP, strict decoding, validation, one SQLite insert).
func BenchmarkCreateTranscription(b *testing.B) {
	e := newEnv(b, envOptions{noRun: true})
	client := &http.Client{}
	defer client.CloseIdleConnections()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		res, err := client.Post(e.url+"/api/transcribe", "application/json", strings.NewReader(`{"audio_url":"tone:5s","language":"en"}`))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusCreated {
			b.Fatalf("status %d", res.StatusCode)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "jobs/s")
}
