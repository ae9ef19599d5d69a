package main

import (
	"encoding/json"
	"net/http"

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
}

// createTranscription handles POST /api/transcribe: {"audio_url", "language"}
// → 201 with the job, or 200 with the existing job for a repeated
// Idempotency-Key.
func (s *server) createTranscription(w http.ResponseWriter, r *http.Request) {
	var req transcribe.Request
	if err := decodeJSON(w, r, maxSmallBody, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.checkTranscription(req, ""); err != nil {
		s.fail(w, r, err)
		return
	}
	s.enqueue(w, r, transcribe.Kind, req)
}

// createJob handles POST /api/jobs, the generic form: any registered kind
// with a JSON payload. Transcription payloads are checked as strictly as on
// POST /api/transcribe.
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
	opts := []jobs.EnqueueOption{jobs.WithPriority(req.Priority)}
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

// listJobs handles GET /api/jobs?status=&kind=&queue=&limit=&cursor=.
func (s *server) listJobs(w http.ResponseWriter, r *http.Request) {
	q, err := listQuery(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	page, err := s.runner.List(r.Context(), q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if page.Jobs == nil {
		page.Jobs = []*jobs.Job{}
	}
	writeJSON(w, http.StatusOK, page)
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
