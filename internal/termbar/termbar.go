// Package termbar draws a job's progress on a terminal as one redrawn line
// (bar, percentage, message, ETA), or as plain lines when the output is not
// a terminal. It is shared by the jobs command and the transcription example.
package termbar

import (
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"

	"github.com/jobsmith/jobs"
)

// barWidth is the number of cells of the bar.
const barWidth = 30

// Bar draws job snapshots on a terminal: one line redrawn with \r
// (bar, percentage, stage message, ETA). When the output is not a terminal
// it degrades to a plain line per 10% step or status change, so logs and
// pipes stay readable. It is not safe for concurrent use.
type Bar struct {
	w   io.Writer
	tty bool
	now func() time.Time

	started  time.Time // when the job was first seen running
	drawn    bool      // a tty line is on screen
	line     string    // the tty line on screen
	lastStep int       // last 10% step printed (non-tty)
	lastStat jobs.Status
}

// New returns a Bar that draws on w; tty says whether w is a terminal.
func New(w io.Writer, tty bool) *Bar {
	return &Bar{w: w, tty: tty, now: time.Now, lastStep: -1}
}

// IsTerminal reports whether f is a character device (a terminal).
func IsTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Update shows s.
func (b *Bar) Update(s jobs.Snapshot) {
	if s.Status == jobs.StatusRunning && b.started.IsZero() {
		b.started = b.now()
	}
	eta := b.eta(s)
	if b.tty {
		b.line = renderLine(s, eta)
		fmt.Fprintf(b.w, "\r%s\x1b[K", b.line)
		b.drawn = true
		return
	}
	step := int(math.Floor(s.Progress * 10))
	if s.Status == b.lastStat && step == b.lastStep {
		return
	}
	b.lastStat, b.lastStep = s.Status, step
	fmt.Fprintln(b.w, renderLine(s, eta))
}

// Above calls print, which writes whole lines to the same terminal (such
// as stdout when both are one), so that they appear above the bar: on a
// terminal it clears the bar's line first and draws the bar again after.
// Elsewhere it only calls print.
func (b *Bar) Above(print func()) {
	if !b.drawn {
		print()
		return
	}
	fmt.Fprint(b.w, "\r\x1b[K")
	print()
	fmt.Fprintf(b.w, "%s\x1b[K", b.line)
}

// Finish ends the redrawn line.
func (b *Bar) Finish() {
	if b.drawn {
		fmt.Fprintln(b.w)
		b.drawn = false
	}
}

// eta estimates the time left from the pace so far; -1 when unknown.
func (b *Bar) eta(s jobs.Snapshot) time.Duration {
	if s.Status != jobs.StatusRunning || b.started.IsZero() || s.Progress <= 0 || s.Progress >= 1 {
		return -1
	}
	elapsed := b.now().Sub(b.started)
	return time.Duration(float64(elapsed) * (1 - s.Progress) / s.Progress)
}

// renderLine formats one state: "[██████░░░░]  42%  segment 17/40  ETA 6s".
func renderLine(s jobs.Snapshot, eta time.Duration) string {
	f := max(0, min(1, s.Progress))
	full := int(math.Round(f * barWidth))
	bar := "[" + strings.Repeat("█", full) + strings.Repeat("░", barWidth-full) + "]"
	msg := s.Message
	switch s.Status {
	case jobs.StatusPending:
		msg = "waiting for a worker"
	case jobs.StatusSucceeded, jobs.StatusFailed, jobs.StatusCanceled:
		msg = string(s.Status)
	}
	if r := []rune(msg); len(r) > 28 {
		msg = string(r[:27]) + "…"
	}
	line := fmt.Sprintf("%s %3d%%  %-28s", bar, int(math.Floor(f*100)), msg)
	if eta >= 0 {
		line += "  ETA " + formatETA(eta)
	}
	return strings.TrimRight(line, " ")
}

// formatETA rounds to seconds: "6s", "1m05s", "1h02m".
func formatETA(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}
