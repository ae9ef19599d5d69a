// Package jobsbun stores jobs in SQLite or PostgreSQL through bun: its
// [Repository] implements [jobs.JobRepository] and passes the conformance
// suite of package jobstest on both databases. Programs that only want a
// database file or a server URL open one with jobsqlite.Open or
// jobspg.Open; programs that share their own bun database with the jobs
// call [New] and enqueue inside their own transactions with [RunInTx].
//
// # Opening
//
// [New] takes a *bun.DB with the SQLite or the PostgreSQL dialect, creates
// or migrates the schema and returns the repository. It imports no driver:
// open the database with jobsqlite.OpenDB or jobspg.OpenDB, which apply and
// check the settings the repository relies on (on SQLite: WAL, a busy
// timeout and _txlock=immediate).
//
//	db, err := jobsqlite.OpenDB(ctx, "data/app.db") // the caller closes db
//	repo, err := jobsbun.New(ctx, db, jobsbun.WithMaxPayloadBytes(4<<20))
//	r, err := jobs.NewRunner(repo)
//
// Options: [WithMaxPayloadBytes] limits payloads and results,
// [WithBusyRetry] sets how long a write retries while another process
// holds the database's write lock, and [WithCloseDB] makes
// [Repository.Close] close the database too.
//
// # Schema
//
// The repository owns these tables: jobs, job_output (the items of each
// job's output, see [jobs.JobRepository.ReadOutput]), jobs_queues (the
// paused queues, see [jobs.JobRepository.PauseQueue]), jobs_counts (the
// finished jobs per queue, kind and status, kept by triggers, which Stats
// reads; on PostgreSQL with jobs_count_changes, its changes not yet
// folded in) and jobs_schema_version, and never touches any other. New migrates them on every open: each step runs in a
// transaction of its own under a cross-process lock (the write lock on
// SQLite, an advisory lock on PostgreSQL), so processes that start at once
// are safe, and a database whose schema is newer than this library is
// refused with [jobs.ErrInvalidArgument]. CHECK constraints hold the job
// invariants, so no code path can store an impossible job. On PostgreSQL
// the tables are created in the schema that the connection's search_path
// selects (jobspg.Open takes it from the URL), and triggers send the LISTEN/NOTIFY hints that jobspg.Listener reads.
//
// # Transactions
//
// [Repository.CreateTx] (and [jobs.Runner.EnqueueTx] above it) takes a
// bun.Tx of the repository's database; any other value is
// [jobs.ErrInvalidArgument] and writes nothing, so a job meant for the
// caller's transaction is never written outside it. [RunInTx] begins,
// commits and rolls back such a transaction; jobs created with the ctx it
// passes to fn start at once after the commit in the runners of this
// process that use the repository, because the repository is a
// [jobs.Notifier] that announces those commits ([jobs.Runner.Run]
// subscribes to it by itself). Runners elsewhere find them at their next
// poll, or at once through jobspg.Listener.
//
//	err := jobsbun.RunInTx(ctx, db, func(ctx context.Context, tx bun.Tx) error {
//		if _, err := tx.NewInsert().Model(&order).Exec(ctx); err != nil {
//			return err
//		}
//		_, err := r.EnqueueTx(ctx, tx, "send_receipt", order.ID)
//		return err
//	})
//
// # Dead owners
//
// Each runner holds a lock that only its death releases, and the runners'
// rescuers look for free locks often ([Repository.RescueDead]: every 25 ms
// on SQLite, every 100 ms on PostgreSQL and when a suspect is due): the
// running jobs of a dead owner are requeued at once, whatever their
// leases, with the attempt error "owner died". A paused process keeps its
// lock and its jobs. [jobs.Runner.Run] finds both methods by itself.
//
// On SQLite ([Repository.HoldOwner]) the lock is an exclusive flock on a
// file of the owner's name in the directory "<database file>-owners",
// which the kernel releases when the process dies, however it dies.
//
// On PostgreSQL it is a shared session-level advisory lock, held on a
// connection of the pool kept for it (so a pool of one connection has no
// owner lock), and a row in the table jobs_owners. The server releases the
// lock when the process dies, and also when a live process's sessions are
// ended for it (pg_terminate_backend, a server shutdown or crash); the
// owner then takes its lock back on a new session at once, at a new epoch.
// A rescuer requeues an owner's jobs only when its lock has been free at
// the same epoch for 50 ms and no session of the database was ended by the
// server meanwhile (pg_stat_database.sessions_killed, which a client's
// death does not move); after such an event the owner gets 3 s to come
// back, and for 10 s after the server started no owner is judged. The
// rescue is a transaction that takes the owner's lock itself. A live
// process taken for dead (its lock's session lost without the server
// ending it, as when a network fault resets the connection, and not back
// within those 50 ms) loses its jobs as after an expired lease: they run
// again elsewhere, and its late writes are refused ([jobs.ErrLeaseLost]).
// Behind a pooler in transaction mode (PgBouncer) a session lock does not
// follow its client: a dead owner's lock may stay held, and its jobs wait
// for their leases as before. PostgreSQL 14 or later.
//
// Owners without a lock (another platform, a database in memory, an older
// version of this library) are never judged: their jobs wait for their
// leases to expire ([Repository.RescueExpired]).
//
// # Several processes on one SQLite file
//
// SQLite lets one writer in at a time, and a process that finds the file
// locked sleeps in SQLite's busy handler while the process that just
// committed takes the lock again: left alone, one of four processes
// draining a file did 5% of the work. The writes of this package therefore
// take turns through an exclusive flock on "<database file>-owners/writer",
// which the kernel hands to a waiting process as soon as it is let go; a
// process keeps it for up to 8 writes in a row while more of its own
// writes wait. The lock orders writers and guards nothing (SQLite's
// locking keeps every write safe): a write that cannot have it within
// 250 ms goes on without it, and the process skips it for a second.
//
// # Errors
//
// Every error of the repository's methods is a [*jobs.Error] with a code of
// package jobs; driver errors are translated at this boundary and kept only
// as the cause: a lock held by another process past [WithBusyRetry], a
// read-only or full disk and a lost connection become
// [jobs.ErrUnavailable], a missing row [jobs.ErrNotFound]. A write that
// fails without saying whether it committed is settled by reading the jobs
// back; when that cannot settle it the error is [jobs.ErrOutcomeUnknown].
// [RunInTx] is the exception: it returns fn's error, or BEGIN's or
// COMMIT's as the driver reported it.
package jobsbun
