package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"
)

// This file holds checkpoints and output from the handler's side: Append
// stages items in memory, Checkpoint stores the state with the staged items
// in one write, and saves from many handlers share that write.

// Append implements [Reporter].
func (e *execution) Append(item any) error {
	b, err := json.Marshal(item)
	if err != nil {
		return &Error{Code: ErrInvalidArgument, Op: "append output", JobID: e.lease.JobID, Msg: "cannot encode the item", Err: err}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ended {
		return errAttemptEnded
	}
	e.staged = append(e.staged, b)
	return nil
}

// Checkpoint implements [Reporter].
func (e *execution) Checkpoint(ctx context.Context, state any) error {
	const op = "checkpoint"
	b, err := json.Marshal(state)
	if err != nil {
		return &Error{Code: ErrInvalidArgument, Op: op, JobID: e.lease.JobID, Msg: "cannot encode the checkpoint", Err: err}
	}
	// One save at a time per attempt, so that items keep their order even
	// when a save fails and its items go back to the stage.
	e.saveMu.Lock()
	defer e.saveMu.Unlock()
	if ctx.Err() != nil {
		return ctxError(ctx, op)
	}
	if e.lost.Load() {
		return leaseLost(op, e.lease.JobID)
	}
	e.mu.Lock()
	if e.ended {
		e.mu.Unlock()
		return errAttemptEnded
	}
	items := e.staged
	e.staged = nil
	e.mu.Unlock()

	s := &save{e: e, u: ProgressUpdate{Lease: e.lease, Checkpoint: b, Output: items}} // Progress: set when written
	// Once submitted, the write is waited out whatever ctx does: returning
	// early would leave the caller unsure whether its items were stored.
	err = e.r.saves.submit(e.r, s)
	if c := CodeOf(err); len(items) > 0 && (c == ErrUnavailable || c == codeInternal) {
		// The write may have committed although the call failed (a lost
		// connection, a deadline): putting its items back would store
		// them twice. The job's output count tells.
		err = e.confirmSaved(err, int64(len(items)))
	}
	switch {
	case err == nil:
		e.outputSeq += int64(len(items))
		e.r.touch(e.lease.JobID) // followers of the output read it now
	case !errors.Is(err, ErrLeaseLost) && !refusedInput(err):
		e.mu.Lock()
		e.staged = append(items, e.staged...) // stored with the next save
		e.mu.Unlock()
	}
	return err
}

// confirmSaved reads the job back after a save of n items failed with
// writeErr, and returns nil when the save was stored after all.
func (e *execution) confirmSaved(writeErr error, n int64) error {
	ctx, cancel := context.WithTimeout(context.Background(), confirmTimeout)
	defer cancel()
	j, err := e.r.repo.Get(ctx, e.lease.JobID)
	if err != nil || j.LeaseToken != e.lease.Token || j.Status != StatusRunning {
		return writeErr
	}
	if j.OutputSeq == e.outputSeq+n {
		return nil
	}
	return writeErr
}

// takeStaged returns the items appended since the last checkpoint; the
// completer stores them with the outcome.
func (e *execution) takeStaged() []json.RawMessage {
	e.mu.Lock()
	defer e.mu.Unlock()
	items := e.staged
	e.staged = nil
	return items
}

// save is one Checkpoint call waiting for its write.
type save struct {
	e     *execution
	u     ProgressUpdate
	state int           // reqWaiting, reqTaken or reqLead (as for enqueues)
	wake  chan struct{} // closed when answered (reqTaken) or promoted (reqLead)
	err   error         // the write's outcome, set before wake is closed
}

// saveBatcher groups the saves of all handlers into shared writes, like
// enqueueBatcher: the first caller to find no write in flight leads and
// writes every save queued by then, then hands the lead to the next waiting
// caller, so that no caller writes for the others longer than one write.
type saveBatcher struct {
	mu      sync.Mutex
	queued  []*save
	writing bool
}

// submit writes s through the batcher and returns its outcome.
func (b *saveBatcher) submit(r *Runner, s *save) error {
	s.wake = make(chan struct{})
	b.mu.Lock()
	b.queued = append(b.queued, s)
	if b.writing {
		b.mu.Unlock()
		<-s.wake
		if s.state == reqTaken {
			return s.err
		}
		b.mu.Lock()                  // promoted: lead the next write
		s.wake = make(chan struct{}) // closed again when answered below
	}
	b.writing = true
	batch := b.queued
	b.queued = nil
	for _, q := range batch {
		q.state = reqTaken
	}
	b.mu.Unlock()

	r.storeSaves(batch)

	b.mu.Lock()
	if len(b.queued) > 0 {
		next := b.queued[0]
		next.state = reqLead
		close(next.wake)
	} else {
		b.writing = false
	}
	b.mu.Unlock()
	return s.err
}

// storeSaves writes a batch of saves and answers each. A batch refused for
// one save's bad input (the repositories check every update before writing
// any, and name the job at fault) stored nothing: it is written again one
// save at a time, so that one bad checkpoint fails only its own caller.
func (r *Runner) storeSaves(batch []*save) {
	err := r.writeSaves(batch)
	if len(batch) > 1 && refusedInput(err) {
		for _, s := range batch {
			s.answer(r.writeSaves([]*save{s}))
		}
		return
	}
	perJob, other := splitErrors(err)
	for _, s := range batch {
		switch jerr := perJob[s.u.Lease.JobID]; {
		case jerr != nil:
			s.answer(jerr)
		case other != nil:
			s.answer(other)
		default:
			s.answer(nil)
		}
	}
}

// refusedInput reports whether err, or the error of any one job in it, is a
// refusal of bad input, after which the repository wrote nothing.
func refusedInput(err error) bool {
	perJob, other := splitErrors(err)
	for _, e := range append(slices.Collect(maps.Values(perJob)), other) {
		if c := CodeOf(e); c == ErrInvalidArgument || c == ErrTooLarge {
			return true
		}
	}
	return false
}

// answer gives s its outcome and wakes its caller.
func (s *save) answer(err error) {
	s.err = err
	close(s.wake)
}

// writeSaves makes one repository call for saves and returns its error; it
// renews the leases it wrote and gives up those that were lost.
func (r *Runner) writeSaves(saves []*save) error {
	ups := make([]ProgressUpdate, len(saves))
	execs := make([]*execution, len(saves))
	seqs := make([]uint64, len(saves))
	for i, s := range saves {
		ups[i], execs[i] = s.u, s.e
		// The progress as of now, not as of the Checkpoint call: the
		// progress loop may have written a newer one meanwhile.
		s.e.mu.Lock()
		ups[i].Progress, seqs[i] = s.e.prog, s.e.seq
		s.e.mu.Unlock()
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.lease/3)
	defer cancel()
	end := r.writes.begin()
	err := r.repo.UpdateProgress(ctx, r.cfg.lease, ups...)
	end()
	if !refusedInput(err) { // a refused call renewed nothing
		r.settleRenewals("store checkpoints", execs, err, start, nil)
	}
	for i, e := range execs {
		// A report since the read above may have been written before this
		// save landed, and been overwritten by it: write it again.
		e.mu.Lock()
		newer := e.seq != seqs[i]
		e.mu.Unlock()
		if newer {
			e.redirty()
		}
	}
	return err
}
