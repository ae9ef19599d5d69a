package jobs_test

import (
	"encoding/json"
	"testing"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

// TestSnapshotJSONProgressShape: a snapshot's progress encodes exactly as
// the job's it was taken from, and the JSON decodes back to the snapshot.
func TestSnapshotJSONProgressShape(t *testing.T) {
	t.Parallel()
	j := &jobs.Job{ID: uuid.MustParse("01890a5d-ac96-774b-bcce-b302099a8057"), Status: jobs.StatusRunning,
		Progress: jobs.Progress{Fraction: 0.25, Message: "segment 1/4"}, Attempt: 2, Error: "earlier: boom"}
	s := j.Snapshot()
	s.Seq = 7
	b, err := json.Marshal(s)
	require.NoError(t, err)
	require.JSONEq(t, `{"id":"01890a5d-ac96-774b-bcce-b302099a8057","status":"running",
		"progress":{"fraction":0.25,"message":"segment 1/4"},"attempt":2,"error":"earlier: boom","seq":7}`, string(b))

	var fromJob, fromSnap struct{ Progress json.RawMessage }
	jb, err := json.Marshal(j)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(jb, &fromJob))
	require.NoError(t, json.Unmarshal(b, &fromSnap))
	require.Equal(t, string(fromJob.Progress), string(fromSnap.Progress), "one shape for progress")

	var back jobs.Snapshot
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, s, back)
	require.Error(t, json.Unmarshal([]byte(`{"progress":0.5}`), &back), "the old flat form is refused")

	empty, err := json.Marshal(jobs.Snapshot{})
	require.NoError(t, err)
	require.JSONEq(t, `{"id":"00000000-0000-0000-0000-000000000000","status":"","progress":{"fraction":0},"attempt":0,"seq":0}`, string(empty))
}
