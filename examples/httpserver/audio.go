package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"strings"

	"github.com/jobsmith/jobs/examples/internal/transcribe"
)

// checkTranscription validates a transcription request and opens its
// audio once, so that a reference that cannot be read (a missing file, a
// file that is not a WAV one this server decodes) is refused now with a
// 400 naming the field, rather than accepted and failed later. prefix goes
// before the field's name ("payload." in POST /api/jobs). The handler
// still fails a job whose file goes away after this check.
func (s *server) checkTranscription(req transcribe.Request, prefix string) error {
	audio, err := req.Validate()
	if fe, ok := errors.AsType[*transcribe.FieldError](err); ok {
		return &fieldError{field: prefix + fe.Field, msg: fe.Reason}
	} else if err != nil {
		return &fieldError{field: strings.TrimSuffix(prefix, "."), msg: "is invalid"}
	}
	_, closer, err := audio.Open(s.cfg.AudioDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &fieldError{field: prefix + "audio_url", msg: "names no file in the audio directory (APP_AUDIO_DIR)"}
	case errors.Is(err, transcribe.ErrBadAudio):
		return &fieldError{field: prefix + "audio_url", msg: "names a file that is not a PCM WAV file this server can read"}
	case err != nil:
		s.log.Warn("audio cannot be opened", "audio_url", audio.String(), "err", err)
		return &fieldError{field: prefix + "audio_url", msg: "names a file that cannot be read"}
	}
	_ = closer.Close() // read-only: nothing to lose
	return nil
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
		return &fieldError{field: "payload", msg: "must be an object with audio_url and language"}
	}
	return s.checkTranscription(req, "payload.")
}
