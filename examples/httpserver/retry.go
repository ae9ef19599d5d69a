package main

import (
	"net/http"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/examples/internal/transcribe"
)

// retryJob handles POST /api/jobs/{id}/retry: a failed or canceled job runs
// again, as the same job ([jobs.Runner.Retry]): it goes back to pending with
// its ID, input, queue, priority and user and a fresh count of attempts;
// its earlier output (a partial transcript) is cleared and its error
// history kept. Watchers of the job see it start again. 200 with the job. A
// job that is pending, running or succeeded is a 409; an unknown one a 404;
// a transcription whose audio can no longer be read a 400 naming
// payload.audio_url, and the job stays as it was. The merge of a long
// recording is retried with its chunks that did not succeed: they run
// again, and the merge once they have ended (the library's retry of a
// batch); the merge is "waiting" meanwhile.
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
	if job.Kind == transcribe.Kind || job.Kind == transcribe.MergeKind {
		if err := s.checkTranscriptionPayload(job.Payload); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	// Retry checks the status again, atomically: a job retried by another
	// request in between is a 409 here.
	job, err := s.runner.Retry(r.Context(), job.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, job)
}
