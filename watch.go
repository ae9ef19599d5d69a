package jobs

import (
	"context"
	"encoding/json"
	"iter"
	"time"

	"github.com/google/uuid"
)

// Snapshot is one observed state of a job, as streamed by [Runner.Watch].
// In JSON its progress has the shape of a [Job]'s (see
// [Snapshot.MarshalJSON]).
type Snapshot struct {
	ID       uuid.UUID
	Status   Status
	Progress float64 // fraction 0..1
	Message  string  // progress stage message
	Attempt  int
	Error    string
	// Seq increases with every snapshot a Watch yields, and across the
	// changes this process sees; use it as an event ID.
	Seq uint64
}

// Snapshot returns the job's state as a [Snapshot] with Seq 0, such as for
// a job read with [Runner.Get] or [Runner.List]. It does no I/O.
func (j *Job) Snapshot() Snapshot {
	return Snapshot{ID: j.ID, Status: j.Status, Progress: j.Progress.Fraction,
		Message: j.Progress.Message, Attempt: j.Attempt, Error: j.Error}
}

// sameState reports whether two snapshots show the same state.
func sameState(a, b Snapshot) bool {
	a.Seq, b.Seq = 0, 0
	return a == b
}

// watchEntry wakes the watchers of one job on events other than progress.
type watchEntry struct {
	n  int           // watchers
	ch chan struct{} // closed at the next event
}

// subscribe registers a watcher of id; call the returned func when done.
func (r *Runner) subscribe(id uuid.UUID) func() {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	w := r.watchers[id]
	if w == nil {
		w = &watchEntry{ch: make(chan struct{})}
		r.watchers[id] = w
	}
	w.n++
	r.nwatch.Add(1)
	return func() {
		r.wmu.Lock()
		defer r.wmu.Unlock()
		r.nwatch.Add(-1)
		if w.n--; w.n == 0 {
			delete(r.watchers, id)
		}
	}
}

// events returns a channel closed at the next event about id.
func (r *Runner) events(id uuid.UUID) <-chan struct{} {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	if w := r.watchers[id]; w != nil {
		return w.ch
	}
	return nil
}

// touch wakes the watchers of id: it was claimed, stored, canceled or rescued.
func (r *Runner) touch(id uuid.UUID) {
	if r.nwatch.Load() == 0 {
		return
	}
	r.wmu.Lock()
	defer r.wmu.Unlock()
	if w := r.watchers[id]; w != nil {
		close(w.ch)
		w.ch = make(chan struct{})
	}
}

// Watch streams snapshots of one job: its current state first, then every
// change, ending after the terminal snapshot. A job running in this process
// is followed live (every progress report; a slow consumer skips to the
// latest value but always gets the final one). Otherwise the repository is
// read every five refresh intervals ([WithRefreshInterval]), or at once on a hint
// of the runner's [Notifier], so jobs run by other processes can be watched
// too.
//
// An unknown ID yields ([Snapshot]{}, [ErrNotFound]) and stops; a repository
// error yields that error and stops. When ctx ends, Watch yields an
// [ErrUnavailable] error that matches ctx.Err() (and ctx's cause) with
// [errors.Is], and stops. Every error it yields is an [*Error]. Watch never
// blocks a handler and is safe for concurrent use.
func (r *Runner) Watch(ctx context.Context, id uuid.UUID) iter.Seq2[Snapshot, error] {
	return func(yield func(Snapshot, error) bool) {
		defer r.subscribe(id)()
		defer r.holdHints()()
		var last Snapshot
		emitted := false
		// emit yields s when it differs from the last one; false means stop.
		emit := func(s Snapshot) bool {
			if emitted && sameState(s, last) {
				return true
			}
			if s.Seq <= last.Seq {
				s.Seq = last.Seq + 1
			}
			last, emitted = s, true
			return yield(s, nil) && !s.Status.Terminal()
		}
		var timer *time.Timer
		defer func() {
			if timer != nil {
				timer.Stop()
			}
		}()
		for {
			if ctx.Err() != nil {
				yield(Snapshot{}, ctxError(ctx, "watch"))
				return
			}
			ev := r.events(id)
			// A local attempt is followed live, unless its lease is lost:
			// then another runner may own the job and the repository knows.
			if e := r.exec(id); e != nil && !e.lost.Load() {
				s, changed := e.snapshot(true)
				if !emit(s) {
					return
				}
				select {
				case <-changed:
				case <-ev:
				case <-ctx.Done():
				}
				continue
			}
			j, err := r.repo.Get(ctx, id)
			if err != nil {
				if ctx.Err() != nil {
					err = ctxError(ctx, "watch")
				}
				yield(Snapshot{}, err)
				return
			}
			s := j.Snapshot()
			s.Seq = r.seq.Add(1)
			if !emit(s) {
				return
			}
			if timer == nil {
				timer = time.NewTimer(r.watchInterval())
			} else {
				timer.Reset(r.watchInterval())
			}
			select {
			case <-timer.C:
			case <-ev:
			case <-ctx.Done():
			}
		}
	}
}

// Await blocks until the job is finished (succeeded, failed or canceled) and
// returns it as stored. It returns [ErrNotFound] for an unknown ID, a
// repository error, or, when ctx ends first, an [ErrUnavailable] error that
// matches ctx.Err() with [errors.Is]; it returns by ctx's deadline, its
// final read of the job included. See [Runner.Watch] for how the job is
// followed.
func (r *Runner) Await(ctx context.Context, id uuid.UUID) (*Job, error) {
	for s, err := range r.Watch(ctx, id) {
		if err != nil {
			return nil, err
		}
		if s.Status.Terminal() {
			break
		}
	}
	// The final read is under ctx too: Await never outlives its caller.
	j, err := r.repo.Get(ctx, id)
	if err != nil && ctx.Err() != nil {
		err = ctxError(ctx, "await")
	}
	return j, err
}

// AwaitResult waits like [Runner.Await] and decodes the result of a
// succeeded job into R. For a job that failed or was canceled it returns the
// job and an error: [ErrFailed] (with the job's last error) or
// [ErrCanceled]. A result that does not decode into R is an
// [ErrInvalidArgument] error.
func AwaitResult[R any](ctx context.Context, r *Runner, id uuid.UUID) (R, *Job, error) {
	var out R
	j, err := r.Await(ctx, id)
	if err != nil {
		return out, nil, err
	}
	const op = "await result"
	switch j.Status {
	case StatusFailed:
		return out, j, newError(ErrFailed, op, id, "job failed: %s", j.Error)
	case StatusCanceled:
		return out, j, newError(ErrCanceled, op, id, "job was canceled")
	}
	if err := json.Unmarshal(j.Result, &out); err != nil {
		return out, j, &Error{Code: ErrInvalidArgument, Op: op, JobID: id, Msg: "result does not decode into the requested type", Err: err}
	}
	return out, j, nil
}

// watchInterval is how often Watch reads a job that runs elsewhere: five
// refresh intervals, because each watcher costs a read of its own, whereas
// the cancel poll is one query for all of the runner's jobs.
func (r *Runner) watchInterval() time.Duration { return 5 * r.cfg.refresh }
