package jobsbun_test

import (
	"testing"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/testdb"
	"github.com/jobsmith/jobs/jobspg"
	"github.com/stretchr/testify/require"
)

// TestPostgresResumeNotifies checks the trigger of jobs_queues: a resume
// sends the "n" hint (Ready) to the listeners of the schema, so the
// runners of other processes claim the resumed queue's jobs at once. No
// job is written here, so nothing else sends that hint.
func TestPostgresResumeNotifies(t *testing.T) {
	t.Parallel()
	repo, err := jobspg.Open(t.Context(), testdb.PostgresDSN(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = repo.Close() })
	l := jobspg.NewListener(repo.DB())
	ch := make(chan bool, 64)
	defer l.Subscribe(func(ev jobs.Event) {
		select {
		case ch <- ev.Ready:
		default:
		}
	})()
	require.Eventually(t, l.Connected, 10*time.Second, time.Millisecond)
	ctx := t.Context()
	require.NoError(t, repo.PauseQueue(ctx, "q"))
	require.NoError(t, repo.ResumeQueue(ctx, "q"))
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ready := <-ch:
			if ready {
				return
			}
		case <-timeout:
			t.Fatal("no Ready hint within 10 s of the resume")
		}
	}
}
