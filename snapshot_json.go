package jobs

import (
	"encoding/json"

	"github.com/google/uuid"
)

// snapshotJSON is the JSON form of a Snapshot.
type snapshotJSON struct {
	ID       uuid.UUID `json:"id"`
	Status   Status    `json:"status"`
	Progress Progress  `json:"progress"`
	Attempt  int       `json:"attempt"`
	Error    string    `json:"error,omitempty"`
	Seq      uint64    `json:"seq"`
}

// MarshalJSON encodes s as {"id", "status", "progress": {"fraction",
// "message"}, "attempt", "error", "seq"}: progress has the shape it has in
// a [Job], so clients read it one way whatever they received.
func (s Snapshot) MarshalJSON() ([]byte, error) {
	return json.Marshal(snapshotJSON{ID: s.ID, Status: s.Status,
		Progress: Progress{Fraction: s.Progress, Message: s.Message}, Attempt: s.Attempt, Error: s.Error, Seq: s.Seq})
}

// UnmarshalJSON decodes the form [Snapshot.MarshalJSON] writes.
func (s *Snapshot) UnmarshalJSON(b []byte) error {
	var v snapshotJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*s = Snapshot{ID: v.ID, Status: v.Status, Progress: v.Progress.Fraction, Message: v.Progress.Message,
		Attempt: v.Attempt, Error: v.Error, Seq: v.Seq}
	return nil
}
