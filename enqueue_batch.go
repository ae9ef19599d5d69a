package jobs

import (
	"context"
	"slices"
	"sync"
	"time"
)

// enqueueBatcher groups concurrent Enqueue calls into shared Create calls.
// There is no goroutine: the first caller leads, writes every request queued
// by then, and hands the lead to the next waiting caller.
type enqueueBatcher struct {
	mu      sync.Mutex // guards the fields below and enqueueReq.state
	pending []*enqueueReq
	active  bool // a leader is writing
}

// enqueueReq is one Enqueue call waiting for its write.
type enqueueReq struct {
	ctx   context.Context
	job   *Job
	state int           // reqWaiting, reqTaken or reqLead
	wake  chan struct{} // closed when served (reqTaken) or promoted (reqLead)
	err   error         // the write's outcome, set before wake is closed
}

const (
	reqWaiting = iota
	reqTaken   // in a write; err follows
	reqLead    // promoted: must write the pending requests
)

// maxEnqueueBatch is the most jobs one shared Create writes.
const maxEnqueueBatch = 500

// create writes j through the batcher.
func (r *Runner) create(ctx context.Context, j *Job) error {
	if ctx.Err() != nil {
		return ctxError(ctx, "enqueue")
	}
	b := &r.batch
	req := &enqueueReq{ctx: ctx, job: j, wake: make(chan struct{})}
	b.mu.Lock()
	b.pending = append(b.pending, req)
	lead := !b.active
	if lead {
		b.active, req.state = true, reqLead
	}
	b.mu.Unlock()
	if !lead {
		select {
		case <-req.wake:
		case <-ctx.Done():
			b.mu.Lock()
			if req.state == reqWaiting {
				b.pending = slices.DeleteFunc(b.pending, func(q *enqueueReq) bool { return q == req })
				b.mu.Unlock()
				return ctxError(ctx, "enqueue")
			}
			b.mu.Unlock()
			<-req.wake // taken: the write is bounded; promoted: closed already
		}
		if req.state == reqTaken {
			return req.err
		}
	}
	r.writeBatch(req)
	return req.err
}

// writeBatch writes the pending requests (self among them) as leader, then
// passes the lead on or ends it.
func (r *Runner) writeBatch(self *enqueueReq) {
	b := &r.batch
	b.mu.Lock()
	n := min(len(b.pending), maxEnqueueBatch)
	batch := slices.Clone(b.pending[:n])
	b.pending = slices.Delete(b.pending, 0, n)
	for _, q := range batch {
		q.state = reqTaken
	}
	b.mu.Unlock()

	// Callers that gave up before the write are not written.
	live := batch[:0:0]
	for _, q := range batch {
		if q.ctx.Err() == nil {
			live = append(live, q)
			continue
		}
		q.err = ctxError(q.ctx, "enqueue")
		if q != self {
			close(q.wake)
		}
	}
	ctx, cancel := batchContext(self, live)
	defer cancel()
	js := make([]*Job, len(live))
	for i, q := range live {
		js[i] = q.job
	}
	var err error
	if len(js) > 0 {
		err = r.repo.Create(ctx, js...)
	}
	for _, q := range live {
		switch {
		case err == nil || len(live) == 1:
			q.err = err
		case badInput(err):
			// One bad job spoils the shared write: write each on its own.
			q.err = r.repo.Create(ctx, q.job)
		default:
			q.err = err
		}
		if q != self {
			close(q.wake)
		}
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.pending) == 0 {
		b.active = false
		return
	}
	next := b.pending[0]
	next.state = reqLead
	close(next.wake)
}

// batchContext returns the context of a shared write: the caller's own when
// it writes alone; otherwise one detached from any single caller, which ends
// at the latest deadline among them (bookkeepingTimeout at most). Either
// bounds only the wait for the write to start: a repository does not cut
// a started write short when its ctx ends (see [JobRepository.Create]).
func batchContext(self *enqueueReq, live []*enqueueReq) (context.Context, context.CancelFunc) {
	if len(live) == 1 && live[0] == self {
		return context.WithCancel(self.ctx)
	}
	latest := time.Now().Add(bookkeepingTimeout)
	if len(live) > 0 {
		var d time.Time
		for _, q := range live {
			qd, ok := q.ctx.Deadline()
			if !ok {
				d = latest
				break
			}
			if qd.After(d) {
				d = qd
			}
		}
		if d.Before(latest) {
			latest = d
		}
	}
	return context.WithDeadline(context.WithoutCancel(self.ctx), latest)
}
