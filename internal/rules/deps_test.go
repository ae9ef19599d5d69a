package rules

import (
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

type node struct {
	id    uuid.UUID
	ids   []uuid.UUID
	after []*node
}

func nodeDeps(n *node) ([]uuid.UUID, []*node) { return n.ids, n.after }
func nodeID(n *node) uuid.UUID                { return n.id }

// TestDeps: IDs first, then the jobs named by After, each once, in the
// order given; a job named with After is an earlier job of the call
// (by position) or a stored one (by its ID); anything else is refused.
func TestDeps(t *testing.T) {
	t.Parallel()
	stored := &node{id: uuid.New()}
	x := uuid.New()
	a := &node{}
	b := &node{ids: []uuid.UUID{x, x}, after: []*node{a, stored, a}}
	c := &node{after: []*node{b, a}}
	got, err := Deps([]*node{a, b, c}, nodeDeps, nodeID)
	require.NoError(t, err)
	require.Empty(t, got[0])
	require.Equal(t, []Dep{{Index: -1, ID: x}, {Index: 0}, {Index: -1, ID: stored.id}}, got[1])
	require.Equal(t, []Dep{{Index: 1}, {Index: 0}}, got[2])

	none, err := Deps([]*node{a, {}}, nodeDeps, nodeID)
	require.NoError(t, err)
	require.Nil(t, none, "no job has a dependency")

	later := &node{}
	self := &node{}
	self.after = []*node{self}
	for name, js := range map[string][]*node{
		"later job":       {{after: []*node{later}}, later},
		"itself":          {self},
		"not in the call": {{after: []*node{{}}}},
		"nil job":         {{after: []*node{nil}}},
		"nil ID":          {{ids: []uuid.UUID{uuid.Nil}}},
		"too many":        {{ids: make([]uuid.UUID, MaxDependencies+1)}},
	} {
		_, err := Deps(js, nodeDeps, nodeID)
		require.Error(t, err, name)
	}
}
