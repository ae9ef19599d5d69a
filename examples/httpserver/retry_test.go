package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/examples/internal/transcribe"
	"github.com/stretchr/testify/require"
)

// TestRetryFailedJob: a failed job runs again as a new job with the same
// kind, payload, queue, priority and max attempts; the old one is kept as
// it was; a repeated Idempotency-Key returns the same new job.
func TestRetryFailedJob(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{kinds: func(r *jobs.Runner) {
		r.Handle("fail", func(context.Context, *jobs.Job, jobs.Reporter) (json.RawMessage, error) {
			return nil, jobs.Permanent(errors.New("boom"))
		})
	}})
	res, body := e.do("POST", "/api/jobs", `{"kind":"fail","payload":{"n":7},"queue":"q1","priority":3,"max_attempts":2,"user":"ann"}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", body)
	old := decodeJob(t, body)
	failed, err := e.runner.Await(t.Context(), old.ID)
	require.NoError(t, err)
	require.Equal(t, jobs.StatusFailed, failed.Status)

	res, body = e.do("POST", "/api/jobs/"+old.ID.String()+"/retry", "", "Idempotency-Key", "retry-1")
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", body)
	again := decodeJob(t, body)
	require.NotEqual(t, old.ID, again.ID)
	require.Equal(t, "/api/jobs/"+again.ID.String(), res.Header.Get("Location"))
	require.Equal(t, "fail", again.Kind)
	require.JSONEq(t, `{"n":7}`, string(again.Payload))
	require.Equal(t, "q1", again.Queue)
	require.Equal(t, 3, again.Priority)
	require.Equal(t, 2, again.MaxAttempts)
	require.Equal(t, "ann", again.ConcurrencyKey, "the same user, under the same per-user limit")
	require.Zero(t, again.Attempt)

	res, body = e.do("POST", "/api/jobs/"+old.ID.String()+"/retry", "", "Idempotency-Key", "retry-1")
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", body)
	require.Equal(t, again.ID, decodeJob(t, body).ID, "the same new job")

	res, body = e.do("GET", "/api/jobs/"+old.ID.String(), "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	kept := decodeJob(t, body)
	require.Equal(t, jobs.StatusFailed, kept.Status, "the old job is kept")
	require.Equal(t, "boom", kept.Error)
	final, err := e.runner.Await(t.Context(), again.ID)
	require.NoError(t, err)
	require.Equal(t, jobs.StatusFailed, final.Status)
	require.Equal(t, 1, final.Attempt, "the new job counts its own attempts")
}

// TestRetryCanceledTranscription: a canceled transcription runs again to
// the end; once its audio file is gone, a retry is a 400 naming the field.
func TestRetryCanceledTranscription(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{delay: 50 * time.Millisecond})
	wav := filepath.Join(e.audioDir, "talk.wav")
	f, err := os.Create(wav)
	require.NoError(t, err)
	require.NoError(t, transcribe.EncodeWAV(f, transcribe.NewTone(time.Second, 300)))
	require.NoError(t, f.Close())
	job := e.createTranscription("file:talk.wav")
	res, body := e.do("POST", "/api/jobs/"+job.ID.String()+"/cancel", "")
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", body)
	canceled, err := e.runner.Await(t.Context(), job.ID)
	require.NoError(t, err)
	require.Equal(t, jobs.StatusCanceled, canceled.Status)

	res, body = e.do("POST", "/api/jobs/"+job.ID.String()+"/retry", "")
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", body)
	again := decodeJob(t, body)
	require.Equal(t, transcribe.Kind, again.Kind)
	require.JSONEq(t, string(job.Payload), string(again.Payload))
	final, err := e.runner.Await(t.Context(), again.ID)
	require.NoError(t, err)
	require.Equal(t, jobs.StatusSucceeded, final.Status)

	// Succeeded, pending or running: 409, with the job's status.
	res, body = e.do("POST", "/api/jobs/"+again.ID.String()+"/retry", "")
	eb := requireError(t, res, body, http.StatusConflict, jobs.ErrConflict)
	require.Equal(t, "only a failed or canceled job can be retried; this one is succeeded", eb.Message)

	require.NoError(t, os.Remove(wav))
	res, body = e.do("POST", "/api/jobs/"+job.ID.String()+"/retry", "")
	eb = requireError(t, res, body, http.StatusBadRequest, jobs.ErrInvalidArgument)
	require.Equal(t, "payload.audio_url", eb.Details.Field)
}

// TestRetryUnknownOrMalformed: 404 for an unknown job, 400 for a bad ID,
// 405 for GET.
func TestRetryUnknownOrMalformed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{noRun: true})
	res, body := e.do("POST", "/api/jobs/01890a5d-ac96-774b-bcce-b302099a8057/retry", "")
	requireError(t, res, body, http.StatusNotFound, jobs.ErrNotFound)
	res, body = e.do("POST", "/api/jobs/abc/retry", "")
	requireError(t, res, body, http.StatusBadRequest, jobs.ErrInvalidArgument)
	res, body = e.do("GET", "/api/jobs/01890a5d-ac96-774b-bcce-b302099a8057/retry", "")
	requireError(t, res, body, http.StatusMethodNotAllowed, codeMethodNotAllowed)
	require.Equal(t, "POST", res.Header.Get("Allow"))
}
