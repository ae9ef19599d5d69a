package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/examples/internal/transcribe"
)

// createJobRequest is the body of POST /api/jobs.
type createJobRequest struct {
	Kind        string          `json:"kind"`
	Payload     json.RawMessage `json:"payload"`
	Queue       string          `json:"queue"`
	Priority    int             `json:"priority"`
	MaxAttempts int             `json:"max_attempts"`
	User        string          `json:"user"` // the concurrency key; see userOption
}

// transcribeRequest is the body of POST /api/transcribe: the job's payload
// (a transcribe.Request, not embedded, so that decode errors name the
// fields as the client wrote them) and the user it is for.
type transcribeRequest struct {
	AudioURL string `json:"audio_url"`
	Language string `json:"language"`
	User     string `json:"user"` // see userOption
}

// createTranscription handles POST /api/transcribe: {"audio_url",
// "language", "user"} → 201 with the job, or 200 with the existing job for
// a repeated Idempotency-Key. The user becomes the job's concurrency key
// (its "concurrency_key" in the job's JSON): the transcription limits of
// main.go bound how many of a user's jobs run at once. Audio longer than
// APP_CHUNK_SECONDS is transcribed in chunks joined by a merge, the job
// returned (see enqueueChunked).
func (s *server) createTranscription(w http.ResponseWriter, r *http.Request) {
	var req transcribeRequest
	if err := decodeJSON(w, r, maxSmallBody, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	payload := transcribe.Request{AudioURL: req.AudioURL, Language: req.Language}
	length, err := s.checkTranscription(payload, "")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	opts, err := userOption(req.User)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if ws := transcribe.PlanChunks(length, s.chunkLength()); ws != nil {
		s.enqueueChunked(w, r, payload, ws, opts)
		return
	}
	s.enqueue(w, r, transcribe.Kind, payload, opts...)
}

// createJob handles POST /api/jobs, the generic form: any registered kind
// with a JSON payload, and an optional user as on POST /api/transcribe.
// Transcription payloads are checked as strictly as on POST
// /api/transcribe.
func (s *server) createJob(w http.ResponseWriter, r *http.Request) {
	var req createJobRequest
	if err := decodeJSON(w, r, maxJobBody, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.Kind == "" {
		s.fail(w, r, &fieldError{field: "kind", msg: "is required"})
		return
	}
	if req.MaxAttempts < 0 {
		s.fail(w, r, &fieldError{field: "max_attempts", msg: "must not be negative"})
		return
	}
	if len(req.Payload) == 0 {
		req.Payload = json.RawMessage("null")
	}
	if req.Kind == transcribe.Kind {
		if err := s.checkTranscriptionPayload(req.Payload); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	opts, err := userOption(req.User)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	opts = append(opts, jobs.WithPriority(req.Priority))
	if req.Queue != "" {
		opts = append(opts, jobs.InQueue(req.Queue))
	}
	if req.MaxAttempts > 0 {
		opts = append(opts, jobs.WithMaxAttempts(req.MaxAttempts))
	}
	s.enqueue(w, r, req.Kind, req.Payload, opts...)
}

// enqueue creates the job, honouring Idempotency-Key, and writes it.
func (s *server) enqueue(w http.ResponseWriter, r *http.Request, kind string, payload any, opts ...jobs.EnqueueOption) {
	key, err := idempotencyKey(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if key != "" {
		opts = append(opts, jobs.WithUniqueKey(key))
	}
	job, err := s.runner.Enqueue(r.Context(), kind, payload, opts...)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeCreated(w, job)
}

// writeCreated answers a create with the job: 201, or 200 for the existing
// job of a repeated Idempotency-Key.
func writeCreated(w http.ResponseWriter, job *jobs.Job) {
	status := http.StatusCreated
	if job.Duplicate {
		status = http.StatusOK
	}
	w.Header().Set("Location", "/api/jobs/"+job.ID.String())
	writeJSON(w, status, job)
}

// getJob handles GET /api/jobs/{id}.
func (s *server) getJob(w http.ResponseWriter, r *http.Request) {
	if job, ok := s.requestedJob(w, r); ok {
		writeJSON(w, http.StatusOK, job)
	}
}

// requestedJob reads the job named by the request's {id}; when it cannot,
// it has answered with the error and returns false.
func (s *server) requestedJob(w http.ResponseWriter, r *http.Request) (*jobs.Job, bool) {
	id, err := jobID(r)
	if err == nil {
		var job *jobs.Job
		if job, err = s.runner.Get(r.Context(), id); err == nil {
			return job, true
		}
	}
	s.fail(w, r, err)
	return nil, false
}

// listJobs handles GET /api/jobs?status=&kind=&queue=&limit=&cursor=. The
// chunks of long recordings are left out (see listFiles).
func (s *server) listJobs(w http.ResponseWriter, r *http.Request) {
	q, err := listQuery(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	page, err := s.listFiles(r.Context(), q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if page.Jobs == nil {
		page.Jobs = []*jobs.Job{}
	}
	writeJSON(w, http.StatusOK, page)
}

// listFiles reads the page of q without the chunk jobs (isChunk): a long
// recording lists as its merge alone. It reads on past chunks until the
// page has q.Limit jobs (50 when 0) or the list ends; Next is then the
// last job listed, from which the next page reads on.
func (s *server) listFiles(ctx context.Context, q jobs.ListQuery) (jobs.Page, error) {
	limit := cmp.Or(q.Limit, 50)
	var out jobs.Page
	for {
		page, err := s.runner.List(ctx, q)
		if err != nil {
			return jobs.Page{}, err
		}
		for i, j := range page.Jobs {
			if isChunk(j) {
				continue
			}
			out.Jobs = append(out.Jobs, j)
			if len(out.Jobs) == limit {
				if i < len(page.Jobs)-1 || page.Next != "" {
					out.Next = j.ID.String()
				}
				return out, nil
			}
		}
		if page.Next == "" {
			return out, nil
		}
		q.Cursor = page.Next
	}
}

// cancelJob handles POST /api/jobs/{id}/cancel: 200 with the job, 409 when
// it already finished.
func (s *server) cancelJob(w http.ResponseWriter, r *http.Request) {
	id, err := jobID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	job, err := s.runner.Cancel(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, job)
}

// healthz answers 200 when storage answers a small read, 503 otherwise.
func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	if _, err := s.runner.List(r.Context(), jobs.ListQuery{Limit: 1}); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// userOption validates the "user" of a request and returns the enqueue
// option that makes it the job's concurrency key; none for "", which means
// no user: such jobs are bounded by no per-user limit (see main.go).
func userOption(user string) ([]jobs.EnqueueOption, error) {
	if user == "" {
		return nil, nil
	}
	if len(user) > maxUser || strings.TrimSpace(user) != user ||
		strings.ContainsFunc(user, func(c rune) bool { return !unicode.IsPrint(c) || c == utf8.RuneError }) {
		return nil, &fieldError{field: "user", msg: fmt.Sprintf("must be at most %d bytes of printable text without leading or trailing spaces", maxUser)}
	}
	return []jobs.EnqueueOption{jobs.WithConcurrencyKey(user)}, nil
}
