package main

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/examples/internal/transcribe"
	"github.com/stretchr/testify/require"
)

// TestAudioThatCannotBeReadIsRefused: a missing file, a file that is not
// WAV and a directory are refused at POST with a 400 naming the field, on
// both create routes, and nothing is stored; a readable file is accepted
// and transcribed.
func TestAudioThatCannotBeReadIsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	require.NoError(t, os.WriteFile(filepath.Join(e.audioDir, "junk.wav"), []byte("not a RIFF file at all"), 0o600))
	require.NoError(t, os.Mkdir(filepath.Join(e.audioDir, "dir.wav"), 0o700))
	f, err := os.Create(filepath.Join(e.audioDir, "talk.wav"))
	require.NoError(t, err)
	require.NoError(t, transcribe.EncodeWAV(f, transcribe.NewTone(time.Second, 300)))
	require.NoError(t, f.Close())

	for _, tt := range []struct{ audio, msg string }{
		{"file:missing.wav", "audio_url: names no file in the audio directory (APP_AUDIO_DIR)"},
		{"missing/deeper.wav", "audio_url: names no file in the audio directory (APP_AUDIO_DIR)"},
		{"file:junk.wav", "audio_url: names a file that is not a PCM WAV file this server can read"},
		{"file:dir.wav", "audio_url: names a file that"},
	} {
		res, body := e.do("POST", "/api/transcribe", `{"audio_url":"`+tt.audio+`"}`)
		eb := requireError(t, res, body, http.StatusBadRequest, jobs.ErrInvalidArgument)
		require.Equal(t, "audio_url", eb.Details.Field, tt.audio)
		require.Contains(t, eb.Message, tt.msg, tt.audio)
		require.NotContains(t, eb.Message, e.audioDir, "no server path in the answer")

		res, body = e.do("POST", "/api/jobs", `{"kind":"transcribe","payload":{"audio_url":"`+tt.audio+`"}}`)
		eb = requireError(t, res, body, http.StatusBadRequest, jobs.ErrInvalidArgument)
		require.Equal(t, "payload.audio_url", eb.Details.Field, tt.audio)
		require.Contains(t, eb.Message, "payload."+tt.msg, tt.audio)
	}
	res, body := e.do("GET", "/api/jobs", "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.JSONEq(t, `{"jobs":[]}`, string(body), "nothing stored")

	job := e.createTranscription("file:talk.wav")
	final, err := e.runner.Await(t.Context(), job.ID)
	require.NoError(t, err)
	require.Equal(t, jobs.StatusSucceeded, final.Status, final.Error)
}

// TestToneLengthMustBeAboveZero: tone:0s says what is wrong with it.
func TestToneLengthMustBeAboveZero(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{noRun: true})
	for _, audio := range []string{"tone:0s", "tone:-3s"} {
		res, body := e.do("POST", "/api/transcribe", `{"audio_url":"`+audio+`"}`)
		eb := requireError(t, res, body, http.StatusBadRequest, jobs.ErrInvalidArgument)
		require.Equal(t, "audio_url: tone length must be above zero, such as 20s", eb.Message, audio)
	}
}
