package jobsbun

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jobsmith/jobs"
)

// This file holds the checkpoint saves of [Repository.UpdateProgress]:
// updates that carry a checkpoint, with the output items it covers.

// saveCheckpoints writes updates, some of which carry a checkpoint, as one
// fenced write with output (fenced.go): each lease's progress, checkpoint
// and output, its lease renewed to now + lease. The updates of one lease
// apply in order (mergeSaves). A lease that was lost stores nothing of its
// updates and reports ErrLeaseLost.
func (r *Repository) saveCheckpoints(ctx context.Context, op string, lease time.Duration, updates []jobs.ProgressUpdate) error {
	return r.runFenced(ctx, op, true, fencedBatch{
		cols: []batchCol{{"d_frac", "float8"}, {"d_msg", "text"}, {"d_cp", "text"}},
		rows: mergeSaves(updates),
		set: func(args []any, t time.Time) (string, []any) {
			args = append(args, t)
			exp, args := r.d.leaseUntil(args, t, lease)
			return "progress_fraction = d_frac, progress_message = d_msg, " +
				"checkpoint = CASE WHEN d_cp IS NULL THEN checkpoint ELSE " + r.d.jsonFromText("d_cp") + " END, " +
				"output_seq = output_seq + d_n, updated_at = ?, lease_expires_at = " + exp, args
		},
		output: true,
	})
}

// mergeSaves folds the updates of each lease into one fenced row, as if
// they were applied in order: the last progress, the last checkpoint (nil
// when none has one) and the outputs one after the other. Rows keep the
// order of their leases' first updates.
func mergeSaves(updates []jobs.ProgressUpdate) []fencedRow {
	type save struct {
		p     jobs.Progress
		cp    json.RawMessage
		items []json.RawMessage
	}
	at := make(map[jobs.Lease]int, len(updates))
	leases := make([]jobs.Lease, 0, len(updates))
	saves := make([]save, 0, len(updates))
	for _, u := range updates {
		i, ok := at[u.Lease]
		if !ok {
			i = len(saves)
			at[u.Lease] = i
			leases = append(leases, u.Lease)
			saves = append(saves, save{})
		}
		s := &saves[i]
		s.p = u.Progress
		if u.Checkpoint != nil {
			s.cp = u.Checkpoint
			if s.items == nil {
				s.items = u.Output // shared, not copied: nothing writes to it
			} else {
				s.items = append(s.items[:len(s.items):len(s.items)], u.Output...)
			}
		}
	}
	rows := make([]fencedRow, len(saves))
	for i, s := range saves {
		rows[i] = fencedRow{lease: leases[i], items: s.items,
			data: []any{s.p.Fraction, s.p.Message, []byte(s.cp)}}
	}
	return rows
}
