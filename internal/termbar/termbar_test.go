package termbar

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

func TestRenderLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		snap jobs.Snapshot
		eta  time.Duration
		want string
	}{
		{jobs.Snapshot{Status: jobs.StatusPending}, -1,
			"[░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░]   0%  waiting for a worker"},
		{jobs.Snapshot{Status: jobs.StatusRunning, Progress: 0.425, Message: "segment 17/40"}, 6 * time.Second,
			"[█████████████░░░░░░░░░░░░░░░░░]  42%  segment 17/40                 ETA 6s"},
		{jobs.Snapshot{Status: jobs.StatusSucceeded, Progress: 1, Message: "segment 40/40"}, -1,
			"[██████████████████████████████] 100%  succeeded"},
		{jobs.Snapshot{Status: jobs.StatusRunning, Progress: 1.5, Message: strings.Repeat("é", 40)}, -1,
			"[██████████████████████████████] 100%  ééééééééééééééééééééééééééé…"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, renderLine(tt.snap, tt.eta))
	}
}

func TestFormatETA(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		0:                               "0s",
		6400 * time.Millisecond:         "6s",
		65 * time.Second:                "1m05s",
		time.Hour + 2*time.Minute + 9e9: "1h02m",
	} {
		require.Equal(t, want, formatETA(d))
	}
}

// fakeClock is a now func the test moves by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestProgressBarTTY(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	clock := &fakeClock{t: time.Unix(0, 0)}
	b := New(&out, true)
	b.now = clock.now
	id := jobs.Snapshot{Status: jobs.StatusRunning, Message: "segment 0/4"}
	b.Update(id)
	clock.t = clock.t.Add(2 * time.Second)
	id.Progress, id.Message = 0.25, "segment 1/4"
	b.Update(id)
	b.Finish()
	lines := strings.Split(out.String(), "\r")
	require.Len(t, lines, 3, "one redraw per update")
	require.True(t, strings.HasSuffix(lines[2], "ETA 6s\x1b[K\n"), "%q: 2 s for a quarter leaves 6 s", lines[2])
	b.Finish()
	require.True(t, strings.HasSuffix(out.String(), "\n") && !strings.HasSuffix(out.String(), "\n\n"), "finish ends the line once")
}

// Lines printed above the bar on a terminal: the bar's line is cleared,
// the lines written, and the bar drawn again below them.
func TestProgressBarAbove(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	clock := &fakeClock{t: time.Unix(0, 0)} // no time passes: ETA 0s
	b := New(&out, true)
	b.now = clock.now
	b.Above(func() { out.WriteString("before any bar\n") })
	b.Update(jobs.Snapshot{Status: jobs.StatusRunning, Progress: 0.5, Message: "segment 2/4"})
	bar := renderLine(jobs.Snapshot{Status: jobs.StatusRunning, Progress: 0.5, Message: "segment 2/4"}, 0)
	b.Above(func() { out.WriteString("  0.50–1.00 speech\n") })
	b.Finish()
	require.Equal(t, "before any bar\n"+"\r"+bar+"\x1b[K"+"\r\x1b[K"+"  0.50–1.00 speech\n"+bar+"\x1b[K"+"\n", out.String())

	out.Reset()
	b = New(&out, false)
	b.now = clock.now
	b.Update(jobs.Snapshot{Status: jobs.StatusRunning, Progress: 0.5})
	b.Above(func() { out.WriteString("line\n") })
	require.Equal(t, renderLine(jobs.Snapshot{Status: jobs.StatusRunning, Progress: 0.5}, 0)+"\nline\n", out.String(),
		"no control codes in a pipe")
}

func TestProgressBarPlain(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	b := New(&out, false)
	b.Update(jobs.Snapshot{Status: jobs.StatusPending})
	for i := range 41 {
		b.Update(jobs.Snapshot{Status: jobs.StatusRunning, Progress: float64(i) / 40})
	}
	b.Update(jobs.Snapshot{Status: jobs.StatusSucceeded, Progress: 1})
	b.Finish()
	s := out.String()
	require.NotContains(t, s, "\r", "no redraws in a pipe")
	require.NotContains(t, s, "\x1b")
	lines := strings.Split(strings.TrimSpace(s), "\n")
	require.Len(t, lines, 13, "pending, 0%..100% in 10% steps, succeeded: %s", s)
}
