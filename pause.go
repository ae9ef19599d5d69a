package jobs

import (
	"context"
	"maps"
	"sync"
	"sync/atomic"
)

// PauseQueue pauses a queue for every process that shares the repository
// (see [JobRepository.PauseQueue]): no job of the queue starts until
// [Runner.ResumeQueue], in this process from the moment PauseQueue returns
// and in other processes from their next claim (within their poll
// interval). Running jobs go on; pending jobs, and jobs that go back to
// pending (retries, rescues), wait. A job of the queue that this runner
// had claimed but not yet started when the pause was stored is not
// started: it is handed back to pending without counting an attempt. A
// queue may be paused before any job exists in it, and pausing a paused
// queue is a no-op.
//
// PauseQueue blocks while it writes to the repository. A malformed queue
// name is [ErrInvalidArgument]; storage errors are returned as the
// repository reports them, and then the queue may or may not be paused.
// It works whether or not Run is running, and is safe for concurrent use.
func (r *Runner) PauseQueue(ctx context.Context, queue string) error {
	if err := r.repo.PauseQueue(ctx, queue); err != nil {
		return err
	}
	r.pauses.mark(queue)
	return nil
}

// ResumeQueue ends the pause of a queue (see [JobRepository.ResumeQueue]):
// this runner claims the queue's pending jobs at once, without waiting for
// its poll interval, and so do the runners of other processes that have a
// [Notifier] (jobspg.NewListener), or that share this process's
// jobsbun.Repository; others claim them within their poll interval.
// Resuming a queue that is not paused is a no-op. It blocks, fails and is
// safe to call like [Runner.PauseQueue].
func (r *Runner) ResumeQueue(ctx context.Context, queue string) error {
	if err := r.repo.ResumeQueue(ctx, queue); err != nil {
		return err
	}
	r.pauses.unmark(queue)
	r.notify()
	return nil
}

// localPauses closes the window between a pause and the claims that were
// under way when it was stored: such a claim may return jobs of the queue
// just paused (on PostgreSQL a claim sees the rows as of its start), and
// the fetcher may hold claimed jobs that no worker has started. Each claim
// notes the pause sequence before it starts; a job whose queue this runner
// paused after that point is handed back instead of run. Claims that start
// after the pause was stored cannot return the queue's jobs, so they are
// never handed back, and a resume by another process cannot leave this
// runner refusing jobs.
type localPauses struct {
	mu  sync.Mutex                        // serialises the writers of at
	seq atomic.Uint64                     // number of pauses marked so far
	at  atomic.Pointer[map[string]uint64] // queue → seq of its latest pause; copied on write, nil until a pause
}

// claimSeq returns the sequence to note before a claim starts.
func (p *localPauses) claimSeq() uint64 { return p.seq.Load() }

// mark records that queue was paused, after the pause is stored.
func (p *localPauses) mark(queue string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := map[string]uint64{}
	if old := p.at.Load(); old != nil {
		m = maps.Clone(*old)
	}
	m[queue] = p.seq.Add(1)
	p.at.Store(&m)
}

// unmark forgets the pause of queue, after a resume is stored.
func (p *localPauses) unmark(queue string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.at.Load()
	if old == nil {
		return
	}
	if _, ok := (*old)[queue]; !ok {
		return
	}
	m := maps.Clone(*old)
	delete(m, queue)
	p.at.Store(&m)
}

// heldBack reports whether a job of queue, claimed by a claim that noted
// seq, must not start: the queue was paused here after that claim began.
func (p *localPauses) heldBack(queue string, seq uint64) bool {
	m := p.at.Load()
	if m == nil {
		return false
	}
	at, ok := (*m)[queue]
	return ok && at > seq
}
