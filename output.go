package jobs

import (
	"context"
	"iter"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs/internal/rules"
)

// Output streams the output of job id (see [Reporter.Append]): the items
// numbered after `after` (0 for all of them), in order, each once, then
// every item stored later, until the job has ended and its last item has
// been yielded. Items are stored by a checkpoint or with the outcome, so
// Output never yields an item that a later attempt redoes. Resume a
// stream by passing the Seq of the last item received.
//
// A job running in this process wakes the stream as soon as a checkpoint is
// stored; otherwise the repository is read every five refresh intervals
// ([WithRefreshInterval]), or at once on a hint of the runner's [Notifier].
// An unknown ID yields an [ErrNotFound] error and stops; a repository
// error, or ctx ending (an [ErrUnavailable] error that matches ctx.Err()),
// is yielded and stops the stream. A negative after is
// [ErrInvalidArgument].
func (r *Runner) Output(ctx context.Context, id uuid.UUID, after int64) iter.Seq2[OutputItem, error] {
	const op = "output"
	return func(yield func(OutputItem, error) bool) {
		if after < 0 {
			yield(OutputItem{}, invalid(op, "after %d is negative", after))
			return
		}
		defer r.subscribe(id)()
		defer r.holdHints()()
		var timer *time.Timer
		defer func() {
			if timer != nil {
				timer.Stop()
			}
		}()
		fail := func(err error) {
			if ctx.Err() != nil {
				err = ctxError(ctx, op)
			}
			yield(OutputItem{}, err)
		}
		for {
			if ctx.Err() != nil {
				fail(ctx.Err())
				return
			}
			ev := r.events(id)
			// The job first, then its output: output only grows, so when
			// the job had ended, the read below holds all of it.
			j, err := r.repo.Get(ctx, id)
			if err != nil {
				fail(err)
				return
			}
			for {
				items, err := r.repo.ReadOutput(ctx, id, after, rules.MaxOutputRead)
				if err != nil {
					fail(err)
					return
				}
				for _, it := range items {
					if !yield(it, nil) {
						return
					}
					after = it.Seq
				}
				if len(items) < rules.MaxOutputRead {
					break
				}
			}
			if j.Status.Terminal() && after >= j.OutputSeq {
				return
			}
			if e := r.exec(id); e != nil && !e.lost.Load() {
				// Local: a stored checkpoint or the outcome touches id.
				select {
				case <-ev:
				case <-ctx.Done():
				}
				continue
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
