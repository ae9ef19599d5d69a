package jobs

import (
	"context"
	"encoding/json"
	"errors"
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
	prog := e.prog
	e.mu.Unlock()

	s := &save{e: e, u: ProgressUpdate{Lease: e.lease, Progress: prog, Checkpoint: b, Output: items}}
	// Once submitted, the write is waited out whatever ctx does: returning
	// early would leave the caller unsure whether its items were stored.
	err = e.r.saves.submit(e.r, s)
	if err != nil && !errors.Is(err, ErrLeaseLost) {
		e.mu.Lock()
		e.staged = append(items, e.staged...) // stored with the next save
		e.mu.Unlock()
	}
	if err == nil {
		e.r.touch(e.lease.JobID) // followers of the output read it now
	}
	return err
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

// storeSaves writes a batch of saves and answers each. A batch refused as a
// whole for one save's bad input (the repository checks all before writing
// any) is written again one save at a time, so one bad checkpoint fails
// only its own caller.
func (r *Runner) storeSaves(batch []*save) {
	perJob, other := splitErrors(r.writeSaves(batch))
	if c := CodeOf(other); len(batch) > 1 && (c == ErrInvalidArgument || c == ErrTooLarge) {
		for _, s := range batch {
			s.answer(r.writeSaves([]*save{s}))
		}
		return
	}
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
	for i, s := range saves {
		ups[i], execs[i] = s.u, s.e
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.lease/3)
	defer cancel()
	end := r.writes.begin()
	err := r.repo.UpdateProgress(ctx, r.cfg.lease, ups...)
	end()
	r.settleRenewals("store checkpoints", slices.Clip(execs), err, start, nil)
	return err
}
