package jobsbun

import (
	"context"
	"slices"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/rules"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// This file holds the queue pauses of [Repository]: one row per paused (or
// once paused) queue in jobs_queues (schema_queues.go), which the claim
// statement reads (attempt.go).

// PauseQueue implements [jobs.JobRepository.PauseQueue] with one upsert of
// the queue's row. A Claim statement that began before the pause committed
// may still return the queue's jobs; any Claim that begins after it
// returned does not. While a queue is paused, claims read past those of
// its pending jobs that are ahead in line (higher priority, older RunAt)
// of the jobs they take: a large paused backlog slows claims (see
// schema_queues.go for figures).
func (r *Repository) PauseQueue(ctx context.Context, queue string) error {
	const op = "pause queue"
	if err := refused(op, rules.Name("queue", queue, false)); err != nil {
		return err
	}
	t := rules.Now()
	return r.write(ctx, op, false, func(ctx context.Context, db bun.IDB) error {
		_, err := db.ExecContext(ctx, "INSERT INTO jobs_queues (name, paused, updated_at) VALUES (?, TRUE, ?) "+
			"ON CONFLICT (name) DO UPDATE SET paused = TRUE, updated_at = excluded.updated_at WHERE NOT jobs_queues.paused",
			queue, t)
		return err
	})
}

// ResumeQueue implements [jobs.JobRepository.ResumeQueue] with one UPDATE.
// When it resumed a paused queue, the runners of this process that
// subscribed to r (see [Repository.Subscribe]) get an event with Ready
// set, and on PostgreSQL every listener of the schema gets the "n" hint,
// so they claim the queue's jobs at once.
func (r *Repository) ResumeQueue(ctx context.Context, queue string) error {
	const op = "resume queue"
	if err := refused(op, rules.Name("queue", queue, false)); err != nil {
		return err
	}
	t := rules.Now()
	var resumed bool
	err := r.write(ctx, op, false, func(ctx context.Context, db bun.IDB) error {
		res, err := db.ExecContext(ctx, "UPDATE jobs_queues SET paused = FALSE, updated_at = ? WHERE name = ? AND paused", t, queue)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		resumed = n > 0
		return err
	})
	if err == nil && resumed {
		r.commits.publish(jobs.Event{Ready: true})
	}
	return err
}

// pausedQueues returns the paused queues, sorted by Go's string order (the
// same on every backend, whatever the database's collation), never nil.
func (r *Repository) pausedQueues(ctx context.Context, op string) ([]string, error) {
	rows, err := r.db.QueryContext(ctx, "SELECT name FROM jobs_queues WHERE paused")
	if err != nil {
		return nil, storageError(op, uuid.Nil, err)
	}
	defer rows.Close()
	qs := []string{}
	for rows.Next() {
		var q string
		if err := rows.Scan(&q); err != nil {
			return nil, storageError(op, uuid.Nil, err)
		}
		qs = append(qs, q)
	}
	if err := rows.Err(); err != nil {
		return nil, storageError(op, uuid.Nil, err)
	}
	slices.Sort(qs)
	return qs, nil
}
