package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/examples/internal/transcribe"
	"github.com/stretchr/testify/require"
)

// TestRetryFailedJob: a failed job runs again as the same job, with a
// fresh count of attempts, its input, queue, priority, max attempts and
// user, and its error history.
func TestRetryFailedJob(t *testing.T) {
	t.Parallel()
	var runs atomic.Int32
	e := newEnv(t, envOptions{kinds: func(r *jobs.Runner) {
		r.Handle("fail", func(context.Context, *jobs.Job, jobs.Reporter) (json.RawMessage, error) {
			if runs.Add(1) == 1 {
				return nil, jobs.Permanent(errors.New("boom"))
			}
			return json.RawMessage(`"second time lucky"`), nil
		})
	}})
	res, body := e.do("POST", "/api/jobs", `{"kind":"fail","payload":{"n":7},"queue":"q1","priority":3,"max_attempts":2,"user":"ann"}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", body)
	old := decodeJob(t, body)
	failed, err := e.runner.Await(t.Context(), old.ID)
	require.NoError(t, err)
	require.Equal(t, jobs.StatusFailed, failed.Status)

	res, body = e.do("POST", "/api/jobs/"+old.ID.String()+"/retry", "")
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", body)
	again := decodeJob(t, body)
	require.Equal(t, old.ID, again.ID, "the same job")
	require.Contains(t, []jobs.Status{jobs.StatusPending, jobs.StatusRunning, jobs.StatusSucceeded}, again.Status)
	require.JSONEq(t, `{"n":7}`, string(again.Payload))
	require.Equal(t, "q1", again.Queue)
	require.Equal(t, 3, again.Priority)
	require.Equal(t, 2, again.MaxAttempts)
	require.Equal(t, "ann", again.ConcurrencyKey, "the same user, under the same per-user limit")

	final, err := e.runner.Await(t.Context(), old.ID)
	require.NoError(t, err)
	require.Equal(t, jobs.StatusSucceeded, final.Status)
	require.JSONEq(t, `"second time lucky"`, string(final.Result))
	require.Equal(t, 1, final.Attempt, "a fresh count of attempts")
	require.Len(t, final.Errors, 1, "the first run's error is kept in the history")
	require.Equal(t, "boom", final.Errors[0].Error)

	// Succeeded now: a second retry is a 409.
	res, body = e.do("POST", "/api/jobs/"+old.ID.String()+"/retry", "")
	requireError(t, res, body, http.StatusConflict, jobs.ErrConflict)
}

// TestRetryCanceledTranscription: a canceled transcription whose audio file
// is gone cannot be retried (400 naming the field, the job unchanged); with
// the file back it runs again to the end.
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

	// Once its audio file is gone, a retry is a 400 and the job stays
	// canceled.
	require.NoError(t, os.Rename(wav, wav+".away"))
	res, body = e.do("POST", "/api/jobs/"+job.ID.String()+"/retry", "")
	eb := requireError(t, res, body, http.StatusBadRequest, jobs.ErrInvalidArgument)
	require.Equal(t, "payload.audio_url", eb.Details.Field)
	kept, err := e.runner.Get(t.Context(), job.ID)
	require.NoError(t, err)
	require.Equal(t, jobs.StatusCanceled, kept.Status)

	require.NoError(t, os.Rename(wav+".away", wav))
	res, body = e.do("POST", "/api/jobs/"+job.ID.String()+"/retry", "")
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", body)
	require.Equal(t, job.ID, decodeJob(t, body).ID)
	final, err := e.runner.Await(t.Context(), job.ID)
	require.NoError(t, err)
	require.Equal(t, jobs.StatusSucceeded, final.Status, "the same job runs to the end")

	// Succeeded, pending or running: 409, with the job's status.
	res, body = e.do("POST", "/api/jobs/"+job.ID.String()+"/retry", "")
	eb = requireError(t, res, body, http.StatusConflict, jobs.ErrConflict)
	require.Equal(t, "only a failed or canceled job can be retried; this one is succeeded", eb.Message)
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
