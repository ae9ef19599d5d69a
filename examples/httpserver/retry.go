package main

import (
	"net/http"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/examples/internal/transcribe"
)

// retryJob handles POST /api/jobs/{id}/retry: a failed or canceled job runs
// again with the same input. Until the library has a retry call, the new
// run is a new job: same kind, payload, queue, priority, max attempts and
// timeout, created like POST /api/jobs (201 with the new job and its
// Location; Idempotency-Key makes a repeated request return the same new
// job, with 200). The old job stays as it was. A job that is pending,
// running or succeeded is a 409; an unknown one a 404; a transcription
// whose audio can no longer be read a 400 naming payload.audio_url.
func (s *server) retryJob(w http.ResponseWriter, r *http.Request) {
	job, ok := s.requestedJob(w, r)
	if !ok {
		return
	}
	if job.Status != jobs.StatusFailed && job.Status != jobs.StatusCanceled {
		s.fail(w, r, &jobs.Error{Code: jobs.ErrConflict, JobID: job.ID,
			Msg: "only a failed or canceled job can be retried; this one is " + string(job.Status)})
		return
	}
	if job.Kind == transcribe.Kind {
		if err := s.checkTranscriptionPayload(job.Payload); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	opts := []jobs.EnqueueOption{jobs.InQueue(job.Queue), jobs.WithPriority(job.Priority), jobs.WithMaxAttempts(job.MaxAttempts)}
	if job.Timeout > 0 {
		opts = append(opts, jobs.WithTimeout(job.Timeout))
	}
	if job.ConcurrencyKey != "" {
		// The same user: the retry counts against the same per-user limit.
		opts = append(opts, jobs.WithConcurrencyKey(job.ConcurrencyKey))
	}
	s.enqueue(w, r, job.Kind, job.Payload, opts...)
}
