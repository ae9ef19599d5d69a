package main

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

// The tests of the transcription limits (APP_USER_CONCURRENCY,
// APP_TRANSCRIBE_SLOTS) hold the jobs they watch with long tones that
// run until the test cancels them, and start them together by enqueueing
// into the paused default queue and resuming it. A job that must wait is
// checked after a probe job, enqueued after it, has run: the runner has
// claimed since, with free slots, and left it pending.
const (
	longTone   = "tone:10m" // runs until canceled: 1,200 segments of 50 ms
	shortTone  = "tone:1s"
	limitDelay = 50 * time.Millisecond // per segment
	waitLimit  = time.Minute           // for a state to come: generous, the test machine is busy
)

// transcribeFor posts a transcription of audio for user ("" for none) and
// returns the job, which shows the user as its concurrency key.
func (e *env) transcribeFor(user, audio string) *jobs.Job {
	e.t.Helper()
	req := map[string]string{"audio_url": audio}
	if user != "" {
		req["user"] = user
	}
	body, err := json.Marshal(req)
	require.NoError(e.t, err)
	res, b := e.do("POST", "/api/transcribe", string(body))
	require.Equal(e.t, http.StatusCreated, res.StatusCode, "body: %s", b)
	j := decodeJob(e.t, b)
	require.Equal(e.t, user, j.ConcurrencyKey, "the job shows its user")
	return j
}

// job reads a job through the API.
func (e *env) job(id uuid.UUID) *jobs.Job {
	e.t.Helper()
	res, b := e.do("GET", "/api/jobs/"+id.String(), "")
	require.Equal(e.t, http.StatusOK, res.StatusCode, "body: %s", b)
	return decodeJob(e.t, b)
}

// waitStatus waits until job id has status want and returns it.
func (e *env) waitStatus(id uuid.UUID, want jobs.Status) *jobs.Job {
	e.t.Helper()
	var j *jobs.Job
	e.waitFor(func() bool {
		j = e.job(id)
		return j.Status == want
	}, "job %s to be %s", id, want)
	return j
}

// waitFor checks cond every 20 ms until it holds, failing the test after
// waitLimit.
func (e *env) waitFor(cond func() bool, what string, args ...any) {
	e.t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline.C:
			e.t.Fatalf("timed out waiting for "+what, args...)
		}
	}
}

// running returns the transcriptions running now.
func (e *env) running() []*jobs.Job {
	e.t.Helper()
	res, b := e.do("GET", "/api/jobs?status=running&kind=transcribe", "")
	require.Equal(e.t, http.StatusOK, res.StatusCode, "body: %s", b)
	var page jobs.Page
	require.NoError(e.t, json.Unmarshal(b, &page))
	return page.Jobs
}

// probe enqueues a job of kind (a handler only this env's runner has, or
// echo) in a queue of its own and waits until it has run: the runner has
// claimed after every job enqueued before.
func (e *env) probe(kind string) {
	e.t.Helper()
	res, b := e.do("POST", "/api/jobs", `{"kind":"`+kind+`","queue":"probes","payload":1}`)
	require.Equal(e.t, http.StatusCreated, res.StatusCode, "body: %s", b)
	e.waitStatus(decodeJob(e.t, b).ID, jobs.StatusSucceeded)
}

// cancel cancels job id and waits until it has ended; it returns the job.
func (e *env) cancel(id uuid.UUID) *jobs.Job {
	e.t.Helper()
	res, b := e.do("POST", "/api/jobs/"+id.String()+"/cancel", "")
	require.Equal(e.t, http.StatusOK, res.StatusCode, "body: %s", b)
	return e.waitStatus(id, jobs.StatusCanceled)
}

// setPaused pauses or resumes the default queue.
func (e *env) setPaused(paused bool) {
	e.t.Helper()
	action := "resume"
	if paused {
		action = "pause"
	}
	res, b := e.do("POST", "/api/queues/default/"+action, "")
	require.Equal(e.t, http.StatusOK, res.StatusCode, "body: %s", b)
}

// requireOneAfterOther checks that the jobs, in the order given, ran one
// after the other: each started no earlier than the one before ended.
func requireOneAfterOther(t *testing.T, js ...*jobs.Job) {
	t.Helper()
	for i := 1; i < len(js); i++ {
		require.False(t, js[i].StartedAt.Before(js[i-1].FinishedAt),
			"job %d started at %v, before job %d ended at %v", i, js[i].StartedAt, i-1, js[i-1].FinishedAt)
	}
}

// noHandler is a probe handler.
func noHandler(_ context.Context, j *jobs.Job, _ jobs.Reporter) (json.RawMessage, error) {
	return j.Payload, nil
}

// TestUserConcurrency: with APP_USER_CONCURRENCY=1 a user's second
// transcription waits for the first, while another user's, and any number
// of those without a user, run beside it.
func TestUserConcurrency(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{limit: Config{UserConcurrency: 1}.transcribeLimit(), workers: 6, delay: limitDelay})
	e.setPaused(true)
	a1 := e.transcribeFor("a", longTone)
	a2 := e.transcribeFor("a", shortTone)
	b1 := e.transcribeFor("b", longTone)
	n1 := e.transcribeFor("", longTone)
	n2 := e.transcribeFor("", longTone)
	e.probe("echo")
	require.Empty(t, e.running(), "the paused queue holds them all")
	e.setPaused(false)
	for _, j := range []*jobs.Job{a1, b1, n1, n2} {
		e.waitStatus(j.ID, jobs.StatusRunning)
	}
	e.probe("echo")
	require.Equal(t, jobs.StatusPending, e.job(a2.ID).Status, "user a's second job waits, with two slots free")

	a1 = e.cancel(a1.ID)
	a2 = e.waitStatus(a2.ID, jobs.StatusSucceeded)
	requireOneAfterOther(t, a1, a2)
	require.Equal(t, "a", a2.ConcurrencyKey)
	for _, j := range []*jobs.Job{b1, n1, n2} {
		require.Equal(t, jobs.StatusRunning, e.job(j.ID).Status, "ran beside both of user a's")
		e.cancel(j.ID)
	}
}

// TestTranscribeSlots: with APP_TRANSCRIBE_SLOTS=1 one transcription runs
// at a time over every user, and the users take turns: the one who
// submitted three files first has the first of them run, then each other
// user's, then the rest of the three.
func TestTranscribeSlots(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{limit: Config{UserConcurrency: 1, TranscribeSlots: 1}.transcribeLimit(), delay: limitDelay})
	e.setPaused(true)
	users := []string{"a", "a", "a", "b", "c", ""}
	for _, u := range users {
		e.transcribeFor(u, longTone)
	}
	e.setPaused(false)
	var ran []*jobs.Job
	for range users {
		var now []*jobs.Job
		e.waitFor(func() bool {
			now = e.running()
			return len(now) > 0
		}, "a transcription to run")
		e.probe("echo")
		now = e.running()
		require.Len(t, now, 1, "one slot, with three workers free")
		ran = append(ran, e.cancel(now[0].ID))
	}
	requireOneAfterOther(t, ran...)
	var order []string
	for _, j := range ran {
		order = append(order, j.ConcurrencyKey)
	}
	require.Equal(t, "a", order[0], "the first submitted runs first")
	require.ElementsMatch(t, []string{"b", "c", ""}, order[1:4], "then every other user before a's others: %q", order)
	require.Equal(t, []string{"a", "a"}, order[4:])
}

// TestUserConcurrencyAcrossServers runs two servers on one SQLite file,
// each with its own runner and APP_USER_CONCURRENCY=1: while user a's
// first transcription runs on one, neither server starts a's second,
// though both claim other jobs; b's runs beside it.
func TestUserConcurrencyAcrossServers(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "jobs.db")
	limit := Config{UserConcurrency: 1}.transcribeLimit()
	first := newEnv(t, envOptions{db: db, limit: limit, delay: limitDelay,
		kinds: func(r *jobs.Runner) { r.Handle("probe-first", noHandler) }})
	a1 := first.transcribeFor("a", longTone)
	a1 = first.waitStatus(a1.ID, jobs.StatusRunning) // on the first server: the second does not exist yet

	second := newEnv(t, envOptions{db: db, limit: limit, delay: limitDelay,
		kinds: func(r *jobs.Runner) { r.Handle("probe-second", noHandler) }})
	a2 := second.transcribeFor("a", shortTone)
	b1 := second.transcribeFor("b", longTone)
	second.waitStatus(b1.ID, jobs.StatusRunning)
	second.probe("probe-second") // the second server has claimed since a2 was enqueued
	first.probe("probe-first")   // and so has the first
	require.Equal(t, jobs.StatusPending, second.job(a2.ID).Status, "user a's second job waits on both servers")
	require.Equal(t, first.runner.Owner(), first.job(a1.ID).LeaseOwner)

	a1 = second.cancel(a1.ID) // from the other server
	a2 = first.waitStatus(a2.ID, jobs.StatusSucceeded)
	requireOneAfterOther(t, a1, a2)
	require.Equal(t, jobs.StatusRunning, first.job(b1.ID).Status, "b's ran beside both of a's")
	first.cancel(b1.ID)
}

// TestBadUserStoresNothing: a malformed or over-long user is a 400 naming
// the field, on both create routes, and no job is stored.
func TestBadUserStoresNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{noRun: true})
	for _, user := range []string{
		strings.Repeat("u", maxUser+1),
		strings.Repeat("é", maxUser/2) + "u", // 129 bytes
		" ada", "ada ", "\t",
		"a\x00b", "a\nb", "a\u200bb",
	} {
		body, err := json.Marshal(map[string]string{"audio_url": "tone:1s", "user": user})
		require.NoError(t, err)
		res, b := e.do("POST", "/api/transcribe", string(body))
		eb := requireError(t, res, b, http.StatusBadRequest, jobs.ErrInvalidArgument)
		require.Equal(t, "user", eb.Details.Field, "%q", user)
		body, err = json.Marshal(map[string]any{"kind": "echo", "payload": 1, "user": user})
		require.NoError(t, err)
		res, b = e.do("POST", "/api/jobs", string(body))
		eb = requireError(t, res, b, http.StatusBadRequest, jobs.ErrInvalidArgument)
		require.Equal(t, "user", eb.Details.Field, "%q", user)
	}
	res, b := e.do("POST", "/api/transcribe", `{"audio_url":"tone:1s","user":7}`)
	eb := requireError(t, res, b, http.StatusBadRequest, jobs.ErrInvalidArgument)
	require.Equal(t, "user", eb.Details.Field)
	res, b = e.do("POST", "/api/transcribe", `{"audio_url":"tone:99h","user":"ada"}`)
	requireError(t, res, b, http.StatusBadRequest, jobs.ErrInvalidArgument)
	res, b = e.do("GET", "/api/jobs", "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.JSONEq(t, `{"jobs":[]}`, string(b), "nothing stored")

	// The longest user, any printable text, and a user on the generic route.
	for _, user := range []string{strings.Repeat("u", maxUser), "José Ñandú", "team/ada@example.com"} {
		j := e.transcribeFor(user, "tone:1s")
		require.JSONEq(t, `{"audio_url":"tone:1s"}`, string(j.Payload), "the user is not in the payload")
	}
	res, b = e.do("POST", "/api/jobs", `{"kind":"echo","payload":1,"user":"ada"}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, "body: %s", b)
	require.Equal(t, "ada", decodeJob(t, b).ConcurrencyKey)
	require.Contains(t, string(b), `"concurrency_key":"ada"`)
}
