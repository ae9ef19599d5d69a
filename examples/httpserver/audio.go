package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"strings"
	"time"

	"github.com/jobsmith/jobs/examples/internal/transcribe"
)

// checkTranscription validates a transcription request and opens its
// audio once, so that a reference that cannot be read (a missing file, a
// file that is not a WAV one this server decodes) is refused now with a
// 400 naming the field, rather than accepted and failed later. It returns
// the audio's length: a tone's is in its URL, a WAV file's in its header.
// prefix goes before the field's name ("payload." in POST /api/jobs). The
// handler still fails a job whose file goes away after this check.
func (s *server) checkTranscription(req transcribe.Request, prefix string) (time.Duration, error) {
	audio, err := req.Validate()
	if fe, ok := errors.AsType[*transcribe.FieldError](err); ok {
		return 0, &fieldError{field: prefix + fe.Field, msg: fe.Reason}
	} else if err != nil {
		return 0, &fieldError{field: strings.TrimSuffix(prefix, "."), msg: "is invalid"}
	}
	src, closer, err := audio.Open(s.cfg.AudioDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return 0, &fieldError{field: prefix + "audio_url", msg: "names no file in the audio directory (APP_AUDIO_DIR)"}
	case errors.Is(err, transcribe.ErrBadAudio):
		return 0, &fieldError{field: prefix + "audio_url", msg: "names a file that is not a PCM WAV file this server can read"}
	case err != nil:
		s.log.Warn("audio cannot be opened", "audio_url", audio.String(), "err", err)
		return 0, &fieldError{field: prefix + "audio_url", msg: "names a file that cannot be read"}
	}
	_ = closer.Close() // read-only: nothing to lose
	return time.Duration(float64(src.Frames()) / float64(src.SampleRate()) * float64(time.Second)), nil
}

// checkTranscriptionPayload checks the payload of a transcription job
// created or retried through the generic routes: strictly decoded (no
// unknown fields), then as checkTranscription, its errors naming
// "payload.…".
func (s *server) checkTranscriptionPayload(payload json.RawMessage) error {
	var req transcribe.Request
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return &fieldError{field: "payload", msg: "must be an object with audio_url, language and, for a part of the audio, start_ms and length_ms"}
	}
	_, err := s.checkTranscription(req, "payload.")
	return err
}
