package main

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/examples/internal/transcribe"
	"github.com/stretchr/testify/require"
)

// outputOf reads a finished job's whole output.
func (e *env) outputOf(id uuid.UUID) []string {
	e.t.Helper()
	var out []string
	for it, err := range e.runner.Output(e.t.Context(), id, 0) {
		require.NoError(e.t, err)
		out = append(out, string(it.Data))
	}
	return out
}

// listIDs lists GET /api/jobs with query and returns the IDs and next.
func (e *env) listIDs(query string) ([]uuid.UUID, string) {
	e.t.Helper()
	res, body := e.do("GET", "/api/jobs"+query, "")
	require.Equal(e.t, http.StatusOK, res.StatusCode, "body: %s", body)
	var page jobs.Page
	require.NoError(e.t, json.Unmarshal(body, &page))
	ids := make([]uuid.UUID, len(page.Jobs))
	for i, j := range page.Jobs {
		ids[i] = j.ID
	}
	return ids, page.Next
}

// A recording longer than APP_CHUNK_SECONDS is one POST and one ID: its
// chunks run (one at a time here: each is one of the user's
// transcriptions, and the user may run one), the events of that ID show
// their progress together rising, then the merge's outcome, and the
// result and output are those of one job for the whole file. The list
// shows the file once.
func TestTranscribeChunksALongRecording(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{chunk: 1, delay: 60 * time.Millisecond, limit: jobs.Limit{PerKey: 1}})
	res, body := e.do("POST", "/api/transcribe", `{"audio_url":"tone:5s","language":"en","user":"ada"}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, "body: %s", body)
	merge := decodeJob(t, body)
	require.Equal(t, "/api/jobs/"+merge.ID.String(), res.Header.Get("Location"))
	require.Equal(t, transcribe.MergeKind, merge.Kind)
	require.True(t, merge.Batch)
	require.Len(t, merge.DependsOn, 5, "one chunk per second")
	require.Equal(t, "ada", merge.ConcurrencyKey)
	require.JSONEq(t, `{"audio_url":"tone:5s","language":"en"}`, string(merge.Payload), "the whole file's request")

	evres, done := e.openEvents(merge.ID, "")
	defer done()
	require.Equal(t, http.StatusOK, evres.StatusCode)
	evs := readEvents(t, evres.Body, nil)
	require.NotEmpty(t, evs)
	last := evs[len(evs)-1]
	require.Equal(t, jobs.StatusSucceeded, last.upd.Status, last.upd.Error)
	require.Equal(t, 1.0, last.upd.Progress.Fraction)
	prev, partial := 0.0, false
	for _, ev := range evs {
		if ev.isOutput() {
			requireSegment(t, ev.out.Seq, ev.out.Data)
			continue
		}
		require.Equal(t, merge.ID, ev.upd.ID)
		require.GreaterOrEqual(t, ev.upd.Progress.Fraction, prev, "the progress only rises")
		prev = ev.upd.Progress.Fraction
		if ev.upd.Status == jobs.StatusWaiting && prev > 0 && prev < 1 {
			partial = true
		}
	}
	require.True(t, partial, "some state shows the chunks part done: %+v", evs)
	require.Equal(t, seqRange(1, 10), outputSeqs(evs), "the merge's output: every segment once, in order")

	// One job for the same audio, through the generic route (never cut).
	res, body = e.do("POST", "/api/jobs", `{"kind":"transcribe","payload":{"audio_url":"tone:5s","language":"en"}}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, "body: %s", body)
	whole := decodeJob(t, body)
	want, wholeEnd, err := jobs.AwaitResult[transcribe.Transcript](t.Context(), e.runner, whole.ID)
	require.NoError(t, err)
	got, final, err := jobs.AwaitResult[transcribe.Transcript](t.Context(), e.runner, merge.ID)
	require.NoError(t, err)
	require.Equal(t, want, got)
	require.Equal(t, 10, got.Segments)
	require.Equal(t, e.outputOf(wholeEnd.ID), e.outputOf(final.ID))

	var chunks []*jobs.Job
	for i, id := range merge.DependsOn {
		c, err := e.runner.Get(t.Context(), id)
		require.NoError(t, err)
		require.Equal(t, jobs.StatusSucceeded, c.Status)
		require.Equal(t, transcribe.Kind, c.Kind)
		require.Equal(t, "ada", c.ConcurrencyKey, "each chunk is the user's")
		require.Equal(t, map[string]string{"chunk": []string{"1/5", "2/5", "3/5", "4/5", "5/5"}[i]}, c.Metadata)
		var req transcribe.Request
		require.NoError(t, json.Unmarshal(c.Payload, &req))
		require.Equal(t, transcribe.Request{AudioURL: "tone:5s", Language: "en", StartMS: int64(i) * 1000, LengthMS: 1000}, req)
		for _, other := range chunks {
			require.True(t, !c.StartedAt.Before(other.FinishedAt) || !other.StartedAt.Before(c.FinishedAt),
				"one chunk of the user at a time")
		}
		chunks = append(chunks, c)
	}

	ids, next := e.listIDs("")
	require.Equal(t, []uuid.UUID{whole.ID, merge.ID}, ids, "the file once, not its chunks")
	require.Empty(t, next)
}

// Canceling the file (its merge, through the cancel route) cancels its
// chunks, running or not; a retry of it runs them again, the merge
// waiting for them.
func TestCancelChunkedCancelsItsChunks(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{chunk: 1, delay: time.Hour, workers: 2}) // two chunks run, two wait
	merge := e.createTranscription("tone:4s")
	require.Len(t, merge.DependsOn, 4)
	require.Eventually(t, func() bool {
		c, err := e.runner.Get(t.Context(), merge.DependsOn[0])
		return err == nil && c.Status == jobs.StatusRunning
	}, 10*time.Second, 10*time.Millisecond, "a chunk runs")

	res, body := e.do("POST", "/api/jobs/"+merge.ID.String()+"/cancel", "")
	require.Equal(t, http.StatusOK, res.StatusCode, "body: %s", body)
	require.Equal(t, jobs.StatusCanceled, decodeJob(t, body).Status)
	for _, id := range merge.DependsOn {
		c, err := e.runner.Await(t.Context(), id)
		require.NoError(t, err)
		require.Equal(t, jobs.StatusCanceled, c.Status, "chunk %s", c.Metadata["chunk"])
	}
	final, err := e.runner.Get(t.Context(), merge.ID)
	require.NoError(t, err)
	require.Equal(t, jobs.StatusCanceled, final.Status)
	require.Zero(t, final.Attempt, "the merge never ran")

	res, body = e.do("POST", "/api/jobs/"+merge.ID.String()+"/retry", "")
	require.Equal(t, http.StatusOK, res.StatusCode, "body: %s", body)
	again := decodeJob(t, body)
	require.Equal(t, jobs.StatusWaiting, again.Status)
	require.Zero(t, again.Progress.Fraction, "no chunk has succeeded")
	for _, id := range merge.DependsOn {
		c, err := e.runner.Get(t.Context(), id)
		require.NoError(t, err)
		require.Contains(t, []jobs.Status{jobs.StatusPending, jobs.StatusRunning}, c.Status, "chunk %s", c.Metadata["chunk"])
	}
	require.Eventually(t, func() bool {
		c, err := e.runner.Get(t.Context(), merge.DependsOn[0])
		return err == nil && c.Status == jobs.StatusRunning
	}, 10*time.Second, 10*time.Millisecond, "the first chunk runs again")
}

// A repeated Idempotency-Key returns the file's merge and creates no
// chunk; pages of the list skip the chunks and still hold the limit.
func TestTranscribeChunkedIdempotentAndListed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{chunk: 2, noRun: true})
	post := func(audio, key string, status int) *jobs.Job {
		res, body := e.do("POST", "/api/transcribe", `{"audio_url":"`+audio+`"}`, "Idempotency-Key", key)
		require.Equal(t, status, res.StatusCode, "body: %s", body)
		return decodeJob(t, body)
	}
	a := post("tone:5s", "file-a", http.StatusCreated)
	require.Len(t, a.DependsOn, 3)
	again := post("tone:5s", "file-a", http.StatusOK)
	require.Equal(t, a.ID, again.ID)
	require.True(t, again.Duplicate)
	b := post("tone:2s", "file-b", http.StatusCreated) // fits in a chunk: one job
	require.Equal(t, transcribe.Kind, b.Kind)
	require.Empty(t, b.DependsOn)
	c := post("tone:3s", "file-c", http.StatusCreated)
	require.Len(t, c.DependsOn, 2)

	all, err := e.runner.List(t.Context(), jobs.ListQuery{Limit: 100})
	require.NoError(t, err)
	require.Len(t, all.Jobs, 3+1+1+2+1, "the repeat created nothing")

	ids, next := e.listIDs("?limit=2")
	require.Equal(t, []uuid.UUID{c.ID, b.ID}, ids)
	require.NotEmpty(t, next)
	ids, next = e.listIDs("?limit=2&cursor=" + next)
	require.Equal(t, []uuid.UUID{a.ID}, ids)
	require.Empty(t, next)
	ids, _ = e.listIDs("?status=waiting")
	require.Equal(t, []uuid.UUID{c.ID, a.ID}, ids)

	// A part of a file by hand, through the generic route: checked, and
	// listed, since no file stands for it.
	res, body := e.do("POST", "/api/jobs", `{"kind":"transcribe","payload":{"audio_url":"tone:5s","start_ms":-1}}`)
	eb := requireError(t, res, body, http.StatusBadRequest, jobs.ErrInvalidArgument)
	require.Equal(t, "payload.start_ms", eb.Details.Field)
	res, body = e.do("POST", "/api/jobs", `{"kind":"transcribe","payload":{"audio_url":"tone:5s","start_ms":1000,"length_ms":500}}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, "body: %s", body)
	part := decodeJob(t, body)
	ids, _ = e.listIDs("?limit=1")
	require.Equal(t, []uuid.UUID{part.ID}, ids)
}
