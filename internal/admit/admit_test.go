package admit

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	require.Empty(t, Check(Limit{}))
	require.Empty(t, Check(Limit{Running: 1, PerKey: 1, Rate: 1, KeyRate: 1, Period: time.Minute}))
	for _, l := range []Limit{
		{Running: -1}, {PerKey: -1}, {Rate: -1}, {KeyRate: -1}, {Running: MaxCount + 1},
		{Rate: 1, Period: -1}, {PerKey: 1, Period: time.Second}, {Rate: 1, Period: time.Microsecond}, {Rate: 1, Period: 25 * time.Hour},
	} {
		require.NotEmpty(t, Check(l), "%+v", l)
	}
	require.Equal(t, time.Second, Limit{Rate: 1}.Window())
}

func TestAdmitCountsRunningAndKeys(t *testing.T) {
	t.Parallel()
	now := time.Now()
	a := New(now, map[string]Limit{"k": {Running: 3, PerKey: 2}}, map[string]Limit{"q": {Running: 10}})
	a.Running("k", "q", "u", 1)
	require.True(t, a.Admit("k", "q", "u"))
	require.False(t, a.Admit("k", "q", "u"), "u has 2 running")
	require.Equal(t, map[Scope][]string{{KindScope, "k"}: {"u"}}, a.FullKeys())
	require.True(t, a.Admit("k", "q", ""), "no key: not limited per key")
	require.False(t, a.Admit("k", "q", "v"), "the kind has 3 running")
	require.Equal(t, []Scope{{KindScope, "k"}}, a.Closed())
	require.True(t, a.Admit("other", "q", "v"), "another kind: only the queue's limit")
	require.True(t, a.Admit("other", "free", "v"), "no limit at all")
	require.True(t, a.NextStart().IsZero(), "no rate held anything back")
}

func TestAdmitRateAndNextStart(t *testing.T) {
	t.Parallel()
	now := time.Now()
	a := New(now, map[string]Limit{"k": {Rate: 2, Period: time.Minute, KeyRate: 1}}, nil)
	s := Scope{KindScope, "k"}
	a.Started(s, "u", now.Add(-50*time.Second))
	a.Started(s, "v", now.Add(-2*time.Minute)) // outside the window
	require.False(t, a.Admit("k", "q", "u"), "u used its key rate")
	require.Equal(t, now.Add(10*time.Second), a.NextStart(), "u's start leaves the window in 10s")
	require.True(t, a.Admit("k", "q", "v"))
	require.False(t, a.Admit("k", "q", "w"), "2 starts in the window")
	require.Equal(t, now.Add(10*time.Second), a.NextStart(), "the earliest start that frees the rate")
	require.Equal(t, []Scope{s}, a.Logged("k", "q"))
}
