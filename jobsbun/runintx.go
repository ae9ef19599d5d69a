package jobsbun

import (
	"context"
	"sync"

	"github.com/jobsmith/jobs"
	"github.com/uptrace/bun"
)

// RunInTx runs fn in a transaction on db: it commits when fn returns nil and
// rolls back when fn returns an error or panics (the panic is then
// re-raised). When db is already a transaction, fn runs in a savepoint of
// it. Use it to enqueue jobs atomically with your own rows:
//
//	err := jobsbun.RunInTx(ctx, db, func(ctx context.Context, tx bun.Tx) error {
//		if _, err := tx.NewInsert().Model(&order).Exec(ctx); err != nil {
//			return err
//		}
//		_, err := runner.EnqueueTx(ctx, tx, "ship", order.ID)
//		return err
//	})
//
// Jobs created in fn with [Repository.CreateTx] (or [jobs.Runner.EnqueueTx])
// and the ctx that fn receives start at once after the commit in the
// runners of this process that use the repository; in other processes
// they start at their next poll or notification. A transaction begun some
// other way works too, but its jobs may wait for the poll of this
// process's runners as well.
//
// On SQLite, open the database with _txlock=immediate (jobsqlite does), so
// that the transaction takes the write lock at BEGIN and never fails with
// SQLITE_BUSY half-way. RunInTx blocks until the transaction ends; it
// returns fn's error, or the error of BEGIN or COMMIT as returned by the
// driver.
func RunInTx(ctx context.Context, db bun.IDB, fn func(ctx context.Context, tx bun.Tx) error) error {
	// In a savepoint (db is a bun.Tx), bun hands fn the context of the
	// outer transaction, so jobs created there join the outer RunInTx's
	// announcement, made at the real commit.
	var created txCreated
	ctx = context.WithValue(ctx, txCreatedKey{}, &created)
	if err := db.RunInTx(ctx, nil, fn); err != nil {
		return err
	}
	for _, r := range created.take() {
		r.commits.publish(jobs.Event{Ready: true})
	}
	return nil
}

// txCreatedKey is the context key of the repositories that created jobs in
// a RunInTx transaction.
type txCreatedKey struct{}

// txCreated collects the repositories that created jobs in one transaction.
type txCreated struct {
	mu    sync.Mutex
	repos []*Repository
}

func (c *txCreated) take() []*Repository {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.repos
}

// afterCommit records that r created jobs in the RunInTx transaction of
// ctx, if there is one.
func afterCommit(ctx context.Context, r *Repository) {
	c, ok := ctx.Value(txCreatedKey{}).(*txCreated)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, seen := range c.repos {
		if seen == r {
			return
		}
	}
	c.repos = append(c.repos, r)
}

// Subscribe implements [jobs.Notifier] for this process: fn gets an event
// with Ready set when a [RunInTx] transaction that created jobs through r
// commits. [jobs.Runner.Run] on r subscribes by itself, besides any
// notifier given to jobs.WithNotifier; other processes learn of those jobs
// through their own notifier or poll. Subscribe is safe for concurrent use;
// fn runs on the goroutine that called RunInTx, after the commit.
func (r *Repository) Subscribe(fn func(jobs.Event)) (unsubscribe func()) {
	return r.commits.subscribe(fn)
}

// commitFeed delivers events to subscribers on the publisher's goroutine.
type commitFeed struct {
	mu   sync.Mutex
	next uint64
	subs map[uint64]func(jobs.Event)
}

func (f *commitFeed) subscribe(fn func(jobs.Event)) func() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.subs == nil {
		f.subs = map[uint64]func(jobs.Event){}
	}
	id := f.next
	f.next++
	f.subs[id] = fn
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			defer f.mu.Unlock()
			delete(f.subs, id)
		})
	}
}

// publish calls every subscriber with ev. Subscribers return quickly (the
// Notifier contract), so holding the lock keeps unsubscribe's promise that
// fn is not called once it has returned.
func (f *commitFeed) publish(ev jobs.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, fn := range f.subs {
		fn(ev)
	}
}
