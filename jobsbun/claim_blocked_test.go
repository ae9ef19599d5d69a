package jobsbun

import (
	"testing"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/admit"
	"github.com/stretchr/testify/require"
)

func TestPairBlocked(t *testing.T) {
	t.Parallel()
	k := func(n string) admit.Scope { return admit.Scope{Type: admit.KindScope, Name: n} }
	q := func(n string) admit.Scope { return admit.Scope{Type: admit.QueueScope, Name: n} }
	full := map[admit.Scope][]string{k("a"): {"u"}, q("slow"): {"v"}}
	p := func(queue, key string) admit.QueueKey { return admit.QueueKey{Queue: queue, Key: key} }
	require.True(t, pairBlocked(p("default", "u"), []string{"a"}, nil, full), "u is full for the only kind")
	require.False(t, pairBlocked(p("default", "u"), []string{"a", "b"}, nil, full), "u's jobs of kind b may fit")
	require.True(t, pairBlocked(p("default", "u"), []string{"a", "b"}, []admit.Scope{k("b")}, full), "b is closed")
	require.True(t, pairBlocked(p("slow", "v"), []string{"a", "b"}, nil, full), "v is full in its queue")
	require.True(t, pairBlocked(p("closed", "w"), []string{"a"}, []admit.Scope{q("closed")}, full), "its queue is closed")
	require.False(t, pairBlocked(p("default", ""), []string{"a"}, nil, full), "no key: never full by key")
}

func TestShut(t *testing.T) {
	t.Parallel()
	closed := []admit.Scope{{Type: admit.KindScope, Name: "a"}, {Type: admit.QueueScope, Name: "q"}}
	require.True(t, shut(jobs.ClaimQuery{Kinds: []string{"a"}}, closed))
	require.False(t, shut(jobs.ClaimQuery{Kinds: []string{"a", "b"}}, closed))
	require.True(t, shut(jobs.ClaimQuery{Queues: []string{"q"}, Kinds: []string{"b"}}, closed))
	require.False(t, shut(jobs.ClaimQuery{}, closed), "any kind: some may be open")
}
