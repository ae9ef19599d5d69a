package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

// decodeQueues decodes the body of GET /api/queues.
func decodeQueues(t *testing.T, body []byte) []queueInfo {
	t.Helper()
	var got struct {
		Queues []queueInfo `json:"queues"`
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&got), "body: %s", body)
	require.NotNil(t, got.Queues, "an array, never null: %s", body)
	return got.Queues
}

// counts returns the counts of a queue with the given non-zero ones set.
func counts(nonZero map[jobs.Status]int) map[jobs.Status]int {
	c := map[jobs.Status]int{}
	for _, st := range allStatuses {
		c[st] = nonZero[st]
	}
	return c
}

// TestQueuesPauseAndResume pauses a queue that has no job yet, enqueues a
// job to it and one to the default queue: the default queue's job runs,
// the paused queue's waits, and GET /api/queues shows both queues with
// their counts and which is paused. The resume runs the waiting job.
func TestQueuesPauseAndResume(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	res, body := e.do("GET", "/api/queues", "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Empty(t, decodeQueues(t, body))

	res, body = e.do("POST", "/api/queues/later/pause", "")
	require.Equal(t, http.StatusOK, res.StatusCode, "body: %s", body)
	require.JSONEq(t, `{"name":"later","paused":true,"counts":{"waiting":0,"pending":0,"running":0,"succeeded":0,"failed":0,"canceled":0}}`, string(body))
	res, _ = e.do("POST", "/api/queues/later/pause", "")
	require.Equal(t, http.StatusOK, res.StatusCode, "pausing a paused queue is fine")

	res, body = e.do("POST", "/api/jobs", `{"kind":"echo","queue":"later","payload":1}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, "body: %s", body)
	held := decodeJob(t, body)
	res, body = e.do("POST", "/api/jobs", `{"kind":"echo","payload":2}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, "body: %s", body)
	ran := decodeJob(t, body)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	done, err := e.runner.Await(ctx, ran.ID)
	require.NoError(t, err)
	require.Equal(t, jobs.StatusSucceeded, done.Status)

	res, body = e.do("GET", "/api/queues", "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	qs := decodeQueues(t, body)
	require.Len(t, qs, 2)
	require.NotNil(t, qs[1].OldestPending, "the held job waits: the paused queue's latency grows")
	require.WithinDuration(t, held.RunAt, *qs[1].OldestPending, time.Millisecond)
	qs[1].OldestPending = nil
	require.Equal(t, []queueInfo{
		{Name: "default", Counts: counts(map[jobs.Status]int{jobs.StatusSucceeded: 1})},
		{Name: "later", Paused: true, Counts: counts(map[jobs.Status]int{jobs.StatusPending: 1})},
	}, qs, "nothing waits in default")
	res, body = e.do("GET", "/api/jobs/"+held.ID.String(), "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	j := decodeJob(t, body)
	require.Equal(t, jobs.StatusPending, j.Status)
	require.Zero(t, j.Attempt, "the paused queue's job was never claimed")

	res, body = e.do("POST", "/api/queues/later/resume", "")
	require.Equal(t, http.StatusOK, res.StatusCode, "body: %s", body)
	var q queueInfo
	require.NoError(t, json.Unmarshal(body, &q))
	require.False(t, q.Paused)
	done, err = e.runner.Await(ctx, held.ID)
	require.NoError(t, err)
	require.Equal(t, jobs.StatusSucceeded, done.Status)

	res, body = e.do("POST", "/api/queues/never-seen/resume", "")
	require.Equal(t, http.StatusOK, res.StatusCode, "resuming a queue that is not paused is fine")
	require.JSONEq(t, `{"name":"never-seen","paused":false,"counts":{"waiting":0,"pending":0,"running":0,"succeeded":0,"failed":0,"canceled":0}}`, string(body))
	res, body = e.do("GET", "/api/queues", "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	for _, q := range decodeQueues(t, body) {
		require.False(t, q.Paused, "queue %s", q.Name)
	}
}

// TestQueuesErrors: malformed queue names are 400 with the library's
// message, nothing is paused, other methods are 405, and without the token
// the queue routes are 401 like the other API routes.
func TestQueuesErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{noRun: true})
	for _, name := range []string{strings.Repeat("q", 200), "%FF", "q%00"} {
		for _, action := range []string{"pause", "resume"} {
			res, body := e.do("POST", "/api/queues/"+name+"/"+action, "")
			eb := requireError(t, res, body, http.StatusBadRequest, jobs.ErrInvalidArgument)
			require.Contains(t, eb.Message, "queue", "%s %s", action, name)
		}
	}
	res, body := e.do("GET", "/api/queues", "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Empty(t, decodeQueues(t, body), "nothing was paused")
	res, body = e.do("GET", "/api/queues/q/pause", "")
	requireError(t, res, body, http.StatusMethodNotAllowed, codeMethodNotAllowed)

	authed := newEnv(t, envOptions{noRun: true, token: testToken})
	for _, req := range [][2]string{{"GET", "/api/queues"}, {"POST", "/api/queues/q/pause"}, {"POST", "/api/queues/q/resume"}} {
		res, body := authed.do(req[0], req[1], "")
		requireError(t, res, body, http.StatusUnauthorized, codeUnauthorized)
	}
	res, body = authed.do("POST", "/api/queues/q/pause", "", "Authorization", "Bearer "+testToken)
	require.Equal(t, http.StatusOK, res.StatusCode, "body: %s", body)
}
