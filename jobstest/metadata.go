package jobstest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

// withMeta returns a job of kind "k" with the metadata m.
func withMeta(m map[string]string) *jobs.Job { return &jobs.Job{Kind: "k", Metadata: m} }

// metadataCases check that a job's metadata is stored as given, returned
// by every read, and refused beyond its limits.
var metadataCases = []testCase{
	{"RoundTrip", func(t *testing.T, h *harness) {
		m := map[string]string{
			"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
			"user":        `"quoted" \back\slash <tag> & ünïcødé 🎧`,
			"empty":       "",
			"a.b/c":       "{\"not\": \"json\"}",
		}
		j := h.create(t, withMeta(m))[0]
		require.Equal(t, m, j.Metadata)
		m["user"] = "changed"
		require.NotEqual(t, "changed", j.Metadata["user"], "Create keeps its own copy")
		got := h.get(t, j.ID)
		requireSame(t, j, got)
		require.Equal(t, j.Metadata, got.Metadata)
		got.Metadata["user"] = "mine"
		require.NotEqual(t, "mine", h.get(t, j.ID).Metadata["user"], "Get returns a copy")
		require.Equal(t, j.Metadata, h.listAll(t, jobs.ListQuery{})[0].Metadata)
		c := h.claimOne(t)
		require.Equal(t, j.Metadata, c.Metadata, "the claimed job carries it to the handler")
		h.finish(t, c, jobs.StatusSucceeded)
		require.Equal(t, j.Metadata, h.get(t, j.ID).Metadata)
	}},
	{"NoneIsNil", func(t *testing.T, h *harness) {
		js := h.create(t, withMeta(nil), withMeta(map[string]string{}))
		for _, j := range js {
			require.Nil(t, j.Metadata)
			require.Nil(t, h.get(t, j.ID).Metadata)
			require.NotContains(t, string(jsonOf(t, h.get(t, j.ID))), "metadata", "omitted from JSON")
		}
	}},
	{"MixedBatchAndDuplicates", func(t *testing.T, h *harness) {
		// Jobs with and without metadata, with and without unique keys, in
		// one call: every write path keeps each job's own.
		batch := []*jobs.Job{withMeta(nil), withMeta(map[string]string{"i": "1"}), withMeta(nil),
			{Kind: "k", UniqueKey: "u", Metadata: map[string]string{"i": "3"}}}
		h.create(t, batch...)
		for _, j := range batch {
			require.Equal(t, j.Metadata, h.get(t, j.ID).Metadata)
		}
		dup := h.create(t, &jobs.Job{Kind: "k", UniqueKey: "u", Metadata: map[string]string{"i": "other"}})[0]
		require.True(t, dup.Duplicate)
		require.Equal(t, map[string]string{"i": "3"}, dup.Metadata, "a duplicate returns the stored job's metadata")
	}},
	{"AtTheLimits", func(t *testing.T, h *harness) {
		m := map[string]string{}
		for i := range 31 {
			m[fmt.Sprintf("k%02d", i)] = strings.Repeat("v", 1024)
		}
		m[strings.Repeat("k", 128)] = "é"
		j := h.create(t, withMeta(m))[0]
		require.Equal(t, m, h.get(t, j.ID).Metadata)
	}},
	{"OverTheLimitsRefused", func(t *testing.T, h *harness) {
		many := map[string]string{}
		for i := range 33 {
			many[fmt.Sprint(i)] = "x"
		}
		for _, c := range []struct {
			name string
			m    map[string]string
			code jobs.Code
		}{
			{"too many entries", many, jobs.ErrTooLarge},
			{"long key", map[string]string{strings.Repeat("k", 129): "x"}, jobs.ErrTooLarge},
			{"long value", map[string]string{"k": strings.Repeat("v", 1025)}, jobs.ErrTooLarge},
			{"empty key", map[string]string{"": "x"}, jobs.ErrInvalidArgument},
			{"key not UTF-8", map[string]string{"\xff": "x"}, jobs.ErrInvalidArgument},
			{"value not UTF-8", map[string]string{"k": "\xff"}, jobs.ErrInvalidArgument},
			{"NUL in key", map[string]string{"a\x00b": "x"}, jobs.ErrInvalidArgument},
			{"NUL in value", map[string]string{"k": "a\x00b"}, jobs.ErrInvalidArgument},
		} {
			ok, bad := job("k"), withMeta(c.m)
			err := h.repo.Create(t.Context(), ok, bad)
			requireCode(t, err, c.code, c.name)
			require.Zero(t, bad.ID, "%s: the job is left unchanged", c.name)
			require.Zero(t, ok.ID, "%s: the batch is refused as a whole", c.name)
		}
		require.Zero(t, h.total(t), "nothing was stored")
	}},
	{"KeptByRetryAndCancel", func(t *testing.T, h *harness) {
		m := map[string]string{"request_id": "abc"}
		j := h.create(t, withMeta(m))[0]
		_, err := h.repo.RequestCancel(t.Context(), j.ID)
		require.NoError(t, err)
		require.Equal(t, m, h.get(t, j.ID).Metadata)
		got, err := h.repo.Retry(t.Context(), j.ID)
		require.NoError(t, err)
		require.Equal(t, m, got.Metadata, "a retried job keeps its metadata")
		c := h.claimOne(t)
		require.Equal(t, m, c.Metadata)
	}},
}
