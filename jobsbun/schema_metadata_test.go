package jobsbun

import (
	"testing"
	"time"

	"github.com/jobsmith/jobs"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// TestMetadataStepMigratesAnExistingDatabase builds a database of the
// schema before job metadata, with a job in it, and opens a repository on
// it: the old job reads back without metadata, runs, and new jobs keep
// theirs.
func TestMetadataStepMigratesAnExistingDatabase(t *testing.T) {
	t.Parallel()
	for name := range rawDBs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			db, last := migratedBefore(t, name, "job metadata")
			id := uuid.Must(uuid.NewV7())
			now := time.Now().UTC()
			_, err := db.ExecContext(ctx, "INSERT INTO jobs (id, kind, queue, payload, max_attempts, run_at, created_at, updated_at) "+
				"VALUES (?, 'k', 'default', '{}', 3, ?, ?, ?)", id.String(), now, now, now)
			require.NoError(t, err)

			r, err := New(ctx, db)
			require.NoError(t, err)
			t.Cleanup(func() { r.Close() })
			j, err := r.Get(ctx, id)
			require.NoError(t, err)
			require.Nil(t, j.Metadata)
			n := &jobs.Job{Kind: "k", Metadata: map[string]string{"a": "b"}}
			require.NoError(t, r.Create(ctx, n))
			claimed, err := r.Claim(ctx, jobs.ClaimQuery{Owner: "o", Limit: 2, LeaseDuration: time.Minute})
			require.NoError(t, err)
			require.Len(t, claimed, 2)
			for _, c := range claimed {
				if c.ID == n.ID {
					require.Equal(t, n.Metadata, c.Metadata)
				} else {
					require.Nil(t, c.Metadata)
				}
			}
			var v int
			require.NoError(t, db.QueryRowContext(ctx, "SELECT MAX(version) FROM jobs_schema_version").Scan(&v))
			require.Equal(t, last, v)
		})
	}
}

// TestDamagedMetadataReadsAsNone writes metadata that is not a JSON object
// of strings behind the repository's back: the job still reads (without
// metadata), and so do the jobs listed beside it.
func TestDamagedMetadataReadsAsNone(t *testing.T) {
	t.Parallel()
	eachTestBackend(t, func(t *testing.T, r *Repository) {
		ctx := t.Context()
		js := []*jobs.Job{{Kind: "k"}, {Kind: "k"}, {Kind: "k"}, {Kind: "k", Metadata: map[string]string{"ok": "yes"}}}
		require.NoError(t, r.Create(ctx, js...))
		for i, bad := range []string{`[1, 2]`, `{"n": 1}`, `"text"`} {
			_, err := r.DB().ExecContext(ctx, "UPDATE jobs SET metadata = ? WHERE id = ?", bad, js[i].ID.String())
			require.NoError(t, err, bad)
		}
		p, err := r.List(ctx, jobs.ListQuery{})
		require.NoError(t, err)
		require.Len(t, p.Jobs, 4)
		for _, j := range p.Jobs {
			if j.ID == js[3].ID {
				require.Equal(t, js[3].Metadata, j.Metadata)
				continue
			}
			require.Nil(t, j.Metadata)
		}
	})
}
