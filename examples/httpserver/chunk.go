package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/examples/internal/transcribe"
)

// chunkMetadata is the metadata key that marks a chunk job of a long
// recording; its value is "i/n". GET /api/jobs leaves such jobs out: the
// merge, their batch, stands for the recording.
const chunkMetadata = "chunk"

// enqueueChunked creates the transcription of a recording of the given
// length as chunks (see transcribe.PlanChunks) and their merge, in one
// transaction with jobs.Runner.EnqueueBatch, and writes the merge: 201,
// or 200 for a repeated Idempotency-Key. Each chunk is a transcription of
// its window with the request's options (the user, so that the per-user
// limit bounds every chunk), marked with chunkMetadata; the merge gets the
// same options and the whole request as its payload, so that it lists as
// the file does. With an Idempotency-Key, each chunk gets a key derived
// from it, so a repeat creates no chunk either: every job of the call is
// the existing one.
func (s *server) enqueueChunked(w http.ResponseWriter, r *http.Request, req transcribe.Request, ws []transcribe.Window, opts []jobs.EnqueueOption) {
	key, err := idempotencyKey(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	chunks := make([]jobs.EnqueueRequest, len(ws))
	for i, win := range ws {
		c := req
		c.StartMS, c.LengthMS = win.StartMS, win.LengthMS
		o := append(slices.Clip(opts), jobs.WithMetadata(map[string]string{chunkMetadata: fmt.Sprintf("%d/%d", i+1, len(ws))}))
		if key != "" {
			o = append(o, jobs.WithUniqueKey(chunkKey(key, i)))
		}
		chunks[i] = jobs.EnqueueRequest{Kind: transcribe.Kind, Payload: c, Options: o}
	}
	if key != "" {
		opts = append(slices.Clip(opts), jobs.WithUniqueKey(key))
	}
	merge, _, err := s.runner.EnqueueBatch(r.Context(), jobs.EnqueueRequest{Kind: transcribe.MergeKind, Payload: req, Options: opts}, chunks...)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeCreated(w, merge)
}

// chunkKey is the unique key of chunk i of a request with Idempotency-Key
// key: short whatever the key's length, and unlike any key a client
// would choose.
func chunkKey(key string, i int) string {
	sum := sha256.Sum256([]byte(key))
	return "chunk/" + hex.EncodeToString(sum[:16]) + "/" + strconv.Itoa(i+1)
}

// chunkLength is the APP_CHUNK_SECONDS of the configuration; 0: never cut.
func (s *server) chunkLength() time.Duration {
	return time.Duration(s.cfg.ChunkSeconds) * time.Second
}

// isChunk reports whether j is a chunk of a long recording.
func isChunk(j *jobs.Job) bool { return j.Metadata[chunkMetadata] != "" }
