package admit

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRanks(t *testing.T) {
	t.Parallel()
	base := time.Now()
	js := []NewJob{
		{Queue: "q", Key: "a", RunAt: base.Add(2)},
		{Queue: "q", Key: "a", RunAt: base.Add(1)},
		{Queue: "q", Key: "a", Priority: 1, RunAt: base.Add(3)},
		{Queue: "q", Key: "b"},
		{Queue: "r", Key: "a"},
	}
	heads := map[QueueKey]Head{
		{"q", "a"}: {V: 10, HasV: true, L: 20, HasL: true}, // a has 10 more queued
		{"q", "b"}: {V: 10, HasV: true},                    // b has none: starts at V
	}
	require.Equal(t, []int64{23, 22, 21, 10, 0}, Ranks(js, heads),
		"a's jobs after its last, by priority then RunAt; b at V; an empty queue from 0")
	require.Equal(t, []QueueKey{{"q", "a"}, {"q", "b"}, {"r", "a"}}, Pairs(js))
}
