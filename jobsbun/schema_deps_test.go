package jobsbun

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/jobsmith/jobs"
)

// TestDepsStepMigratesAnExistingDatabase builds a database of the schema
// before dependencies, with a job in it, and opens a repository on it: a
// new job can wait for the old one, the old one ended by SQL of one's own
// lets it go on, the status checks still refuse what they refused (and
// admit waiting, unfinished), and on SQLite, whose table definition the
// step edits, the file passes integrity_check and a new connection
// reads the new definition.
func TestDepsStepMigratesAnExistingDatabase(t *testing.T) {
	t.Parallel()
	for name := range rawDBs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			db, _ := migratedBefore(t, name, "dependencies and batches")
			old := uuid.Must(uuid.NewV7())
			now := time.Now().UTC()
			_, err := db.ExecContext(ctx, "INSERT INTO jobs (id, kind, queue, payload, max_attempts, run_at, created_at, updated_at) "+
				"VALUES (?, 'k', 'default', '{}', 3, ?, ?, ?)", old.String(), now, now, now)
			require.NoError(t, err)

			repo, err := New(ctx, db)
			require.NoError(t, err)
			t.Cleanup(func() { repo.Close() })
			j := &jobs.Job{Kind: "k", DependsOn: []uuid.UUID{old}}
			require.NoError(t, repo.Create(ctx, j))
			require.Equal(t, jobs.StatusWaiting, j.Status)

			for _, set := range []string{"status = 'weird'", "status = 'waiting', finished_at = updated_at", "status = 'succeeded'"} {
				_, err := db.ExecContext(ctx, "UPDATE jobs SET "+set+" WHERE id = ?", j.ID.String())
				require.Error(t, err, set)
			}
			_, err = db.ExecContext(ctx, "UPDATE jobs SET status = 'succeeded', finished_at = updated_at WHERE id = ?", old.String())
			require.NoError(t, err)
			got, err := repo.Get(ctx, j.ID)
			require.NoError(t, err)
			require.Equal(t, jobs.StatusPending, got.Status, "the old job's end lets the new one go on")

			if repo.d.sqlite() {
				var check string
				require.NoError(t, db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&check))
				require.Equal(t, "ok", check)
				conn, err := db.Conn(ctx) // a connection of its own reads the schema afresh
				require.NoError(t, err)
				defer conn.Close()
				_, err = conn.ExecContext(ctx, "INSERT INTO jobs (id, kind, queue, payload, max_attempts, run_at, created_at, updated_at, status) "+
					"VALUES (?, 'k', 'default', '{}', 3, ?, ?, ?, 'waiting')", uuid.Must(uuid.NewV7()).String(), now, now, now)
				require.NoError(t, err)
			}
		})
	}
}
