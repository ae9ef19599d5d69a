package jobs_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

func TestWithMetadataIsCheckedAtEnqueue(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		r := newRunner(t, repo)
		ctx := t.Context()
		many := map[string]string{}
		for i := range 33 {
			many[fmt.Sprint(i)] = "v"
		}
		_, err := r.Enqueue(ctx, "k", nil, jobs.WithMetadata(many))
		require.ErrorIs(t, err, jobs.ErrTooLarge)
		_, err = r.Enqueue(ctx, "k", nil, jobs.WithMetadata(map[string]string{"k": strings.Repeat("v", 1025)}))
		require.ErrorIs(t, err, jobs.ErrTooLarge)
		require.ErrorContains(t, err, `metadata value of "k" is 1025 bytes`)
		_, err = r.Enqueue(ctx, "k", nil, jobs.WithMetadata(map[string]string{"": "v"}))
		require.ErrorIs(t, err, jobs.ErrInvalidArgument)
		_, err = r.EnqueueMany(ctx, jobs.EnqueueRequest{Kind: "k"},
			jobs.EnqueueRequest{Kind: "k", Options: []jobs.EnqueueOption{jobs.WithMetadata(map[string]string{"k": "\x00"})}})
		require.ErrorIs(t, err, jobs.ErrInvalidArgument)
		s, err := r.Stats(ctx)
		require.NoError(t, err)
		require.Zero(t, s.Total, "nothing was stored")

		m := map[string]string{"trace": "t1"}
		j, err := r.Enqueue(ctx, "k", nil, jobs.WithMetadata(m))
		require.NoError(t, err)
		m["trace"] = "changed after"
		require.Equal(t, map[string]string{"trace": "t1"}, get(t, r, j.ID).Metadata, "the option copies the map")
	})
}

func TestMetadataInJSON(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(&jobs.Job{Kind: "k", Metadata: map[string]string{"b": "2", "a": "1"}})
	require.NoError(t, err)
	require.Contains(t, string(b), `"metadata":{"a":"1","b":"2"}`)
	b, err = json.Marshal(&jobs.Job{Kind: "k"})
	require.NoError(t, err)
	require.NotContains(t, string(b), "metadata")
	var j jobs.Job
	require.NoError(t, json.Unmarshal([]byte(`{"metadata":{"user":"ann"}}`), &j))
	require.Equal(t, map[string]string{"user": "ann"}, j.Metadata)
}
