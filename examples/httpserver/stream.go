package main

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/follow"
)

// update is one state message of the SSE and WebSocket streams: the state
// of a job after a change. Its progress has the same shape as a job's in
// the REST answers, {"fraction": 0..1, "message": …}, so a client reads
// progress the same way everywhere.
type update struct {
	ID       uuid.UUID     `json:"id"`
	Status   jobs.Status   `json:"status"`
	Progress jobs.Progress `json:"progress"`
	Attempt  int           `json:"attempt"`
	Error    string        `json:"error,omitempty"`
}

func updateOf(s jobs.Snapshot) update {
	return update{ID: s.ID, Status: s.Status, Progress: jobs.Progress{Fraction: s.Progress, Message: s.Message},
		Attempt: s.Attempt, Error: s.Error}
}

// outputMessage is one output message of the streams: an item of the job's
// output (for a transcription, one segment), numbered from 1.
type outputMessage struct {
	Seq  int64           `json:"seq"`
	Data json.RawMessage `json:"data"`
}

// follow starts following job id for a stream (see follow.Stream), with
// the output items numbered after `after`. The returned context is r's,
// also ended by the server's shutdown; stop ends the stream and waits for
// its goroutines.
func (s *server) follow(r *http.Request, id uuid.UUID, after int64) (ctx context.Context, js *follow.Stream, stop func()) {
	ctx, cancel := s.streamContext(r)
	js = follow.Start(ctx, s.runner, id, after)
	return ctx, js, func() {
		js.Stop()
		cancel()
	}
}
