package jobs

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"
)

// Reporter receives the progress of a running attempt. Report stores the
// latest value in memory and returns at once, without I/O: watchers in this
// process see every report (slow ones skip to the latest value), and the
// runner writes the latest value to the repository at most once per progress
// interval ([WithProgressInterval]), always including the final one. A
// progress write also renews the job's lease.
//
// Report is safe for concurrent use. A fraction that is NaN, infinite or
// outside [0, 1], or a message longer than 1024 bytes or not UTF-8,
// returns [ErrInvalidArgument] and changes nothing. Fractions may go down
// (a stage may restart). After the attempt has ended, Report returns
// [ErrConflict] and changes nothing.
//
// Append and Checkpoint make a long job resumable and stream its partial
// results. Append encodes item as JSON and adds it to the attempt's staged
// output, without I/O. Checkpoint encodes state as JSON and stores it as the
// job's checkpoint together with the items staged since the previous
// checkpoint, in one write, and returns once that write is stored (saves
// from many handlers share one write). Only then do the items appear in the
// job's output ([Runner.Output], [JobRepository.ReadOutput]), numbered from
// 1 in the order of appending. Items staged when the handler returns are
// stored with its outcome if the job ends (succeeded, failed or canceled)
// and dropped if it is retried. So the output never holds work that a later
// attempt redoes: after a crash, the next attempt starts from the last
// checkpoint ([Job.LoadCheckpoint]) and its items follow the ones that
// checkpoint covered, each exactly once.
//
// Checkpoint is fenced by the attempt's lease: an attempt that lost its
// lease gets [ErrLeaseLost] and stores nothing. A state or item that does
// not encode as JSON is [ErrInvalidArgument] and changes nothing. When the
// repository refuses a save (a checkpoint or item over its payload limit:
// [ErrTooLarge]), the items staged since the previous checkpoint are
// dropped, so that one bad item cannot block the attempt; a handler that
// wants them appends them again. When storage is unavailable, they stay
// staged for the next Checkpoint. An item refused with the outcome fails
// the job, without that output. Checkpoint honours ctx until its write
// starts and then waits it out. Calls of one attempt run one at a time.
type Reporter interface {
	Report(fraction float64, message string) error
	Append(item any) error
	Checkpoint(ctx context.Context, state any) error
}

// execution is one claimed attempt in this process. It is the handler's
// Reporter.
type execution struct {
	r          *Runner
	job        *Job // as claimed; the handler gets this pointer
	lease      Lease
	attempt    int
	paused     uint64          // the pause sequence its claim noted; see pause.go
	ctx        context.Context // the handler's base context
	cancel     context.CancelCauseFunc
	renewed    atomic.Int64                 // unix ns when the last successful lease renewal started
	lost       atomic.Bool                  // the lease is known lost: write nothing more
	attemptEnd func(j *Job, outcome string) // OnAttempt's end; set on the worker before the outcome is queued, see hooks.go

	saveMu    sync.Mutex // one Checkpoint at a time; guards outputSeq
	outputSeq int64      // the job's stored output count, as this attempt knows it

	mu       sync.Mutex        // guards the fields below
	staged   []json.RawMessage // output appended since the last checkpoint
	prog     Progress
	reported bool          // Report was called in this attempt
	dirty    bool          // prog not yet written to the repository
	ended    bool          // the handler returned: Report refuses
	status   Status        // running until the outcome is stored
	errText  string        // the stored outcome's error
	seq      uint64        // of the latest change
	sig      chan struct{} // closed at the next change; nil when nobody waits
}

func newExecution(r *Runner, base context.Context, j *Job, claimed time.Time) *execution {
	e := &execution{r: r, job: j, lease: j.Lease(), attempt: j.Attempt,
		prog: j.Progress, status: StatusRunning, seq: r.seq.Add(1), outputSeq: j.OutputSeq}
	e.ctx, e.cancel = context.WithCancelCause(base)
	e.renewed.Store(claimed.UnixNano())
	return e
}

var errAttemptEnded = newError(ErrConflict, "report progress", [16]byte{}, "the attempt has ended")

// Report implements [Reporter].
func (e *execution) Report(fraction float64, message string) error {
	p := Progress{Fraction: fraction, Message: message}
	if err := p.Validate(); err != nil {
		return err
	}
	seq := e.r.seq.Add(1)
	e.mu.Lock()
	if e.ended {
		e.mu.Unlock()
		return errAttemptEnded
	}
	e.prog, e.reported, e.dirty, e.seq = p, true, true, seq
	if e.sig != nil {
		close(e.sig)
		e.sig = nil
	}
	e.mu.Unlock()
	return nil
}

// snapshot returns the current state and, when wait is set, a channel closed
// at the next change.
func (e *execution) snapshot(wait bool) (Snapshot, <-chan struct{}) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := Snapshot{ID: e.lease.JobID, Status: e.status, Progress: e.prog.Fraction,
		Message: e.prog.Message, Attempt: e.attempt, Error: e.errText, Seq: e.seq}
	if !wait {
		return s, nil
	}
	if e.sig == nil {
		e.sig = make(chan struct{})
	}
	return s, e.sig
}

// end marks the attempt as ended and returns the final progress to store, or
// nil when the handler reported nothing.
func (e *execution) end() *Progress {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ended, e.dirty = true, false
	if !e.reported {
		return nil
	}
	p := e.prog
	return &p
}

// hasEnded reports whether the handler has returned.
func (e *execution) hasEnded() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.ended
}

// stored records the outcome once the repository has it and wakes watchers.
func (e *execution) stored(st Status, errText string, p *Progress) {
	seq := e.r.seq.Add(1)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.status, e.errText, e.seq = st, errText, seq
	if p != nil {
		e.prog = *p
	}
	if e.sig != nil {
		close(e.sig)
		e.sig = nil
	}
}

// takeDirty returns the progress to write, if it changed since the last write.
func (e *execution) takeDirty() (Progress, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.dirty || e.ended {
		return Progress{}, false
	}
	e.dirty = false
	return e.prog, true
}

// redirty marks p as unwritten again after a failed write, unless a newer
// value or the end came first.
func (e *execution) redirty() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.ended {
		e.dirty = true
	}
}

// progressLoop writes the changed progress of all local jobs in one
// repository call per interval, and calls the OnProgress hook.
func (r *Runner) progressLoop(ctx context.Context) {
	t := time.NewTicker(r.cfg.progress)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.flushProgress(ctx)
	}
}

func (r *Runner) flushProgress(ctx context.Context) {
	var (
		ups   []ProgressUpdate
		execs []*execution
	)
	for _, e := range r.execList() {
		if e.lost.Load() {
			continue
		}
		if p, ok := e.takeDirty(); ok {
			ups = append(ups, ProgressUpdate{Lease: e.lease, Progress: p})
			execs = append(execs, e)
		}
	}
	if len(ups) == 0 {
		return
	}
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, r.cfg.lease/3)
	end := r.writes.begin()
	err := r.repo.UpdateProgress(wctx, r.cfg.lease, ups...)
	end()
	cancel()
	r.settleRenewals("store progress", execs, err, start, (*execution).redirty)
	for i := range r.cfg.hooks {
		f := r.cfg.hooks[i].OnProgress
		if f == nil {
			continue
		}
		for _, e := range execs {
			s, _ := e.snapshot(false)
			r.callHook("progress", func() { f(s) })
		}
	}
}
