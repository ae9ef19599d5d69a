package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/jobsmith/jobs"
)

func init() {
	commands = append(commands, command{"watch", "[flags] ID",
		"Follow one job until it ends: a progress bar, and its output items as they are stored.\n" +
			"The exit status is 0 when the job succeeded and 1 when it failed or was canceled.", runWatch})
}

// errJobEnded is the error of a watched job that did not succeed; watch
// has printed why.
var errJobEnded = errors.New("job did not succeed")

func runWatch(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	noOutput := fs.Bool("no-output", false, "do not print the job's output items")
	id, err := e.job(ctx, fs, args)
	if err != nil {
		return err
	}
	r, err := e.runner()
	if err != nil {
		return err
	}
	// Check the job exists first: the error is then the same for every
	// backend, before any line is drawn.
	if _, err := r.Get(ctx, id); err != nil {
		return err
	}
	out := &liveWriter{w: e.stdout, tty: isTerminal(e.stdout)}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var outErr error
	if !*noOutput {
		wg.Go(func() {
			for it, err := range r.Output(ctx, id, 0) {
				if err != nil {
					if ctx.Err() == nil {
						outErr = err
					}
					return
				}
				out.line(fmt.Sprintf("%d: %s", it.Seq, it.Data))
			}
		})
	}
	var last jobs.Snapshot
	for snap, err := range r.Watch(ctx, id) {
		if err != nil {
			cancel()
			wg.Wait()
			return err
		}
		last = snap
		out.bar(snap)
	}
	wg.Wait() // the output ends once the job has ended and its items are read
	out.done()
	if outErr != nil {
		return outErr
	}
	if last.Status != jobs.StatusSucceeded {
		msg := fmt.Sprintf("job %s %s", id, last.Status)
		if last.Error != "" {
			msg += ": " + last.Error
		}
		fmt.Fprintln(e.stderr, msg)
		return errJobEnded
	}
	return nil
}

// liveWriter draws a progress bar that output lines scroll above: on a
// terminal the bar is redrawn in place; elsewhere each change is a line.
type liveWriter struct {
	mu    sync.Mutex
	w     io.Writer
	tty   bool
	drawn string // the bar on screen (tty), or the last printed
}

// bar shows the snapshot's status and progress.
func (l *liveWriter) bar(s jobs.Snapshot) {
	const width = 30
	n := int(s.Progress*width + 0.5)
	text := fmt.Sprintf("[%s%s] %3.0f%% %s", strings.Repeat("#", n), strings.Repeat(".", width-n), s.Progress*100, s.Status)
	if s.Message != "" {
		text += " " + clip(s.Message, 60)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if text == l.drawn {
		return
	}
	if l.tty {
		fmt.Fprintf(l.w, "\r\033[K%s", text)
	} else {
		fmt.Fprintln(l.w, text)
	}
	l.drawn = text
}

// line prints one line above the bar.
func (l *liveWriter) line(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tty {
		fmt.Fprintf(l.w, "\r\033[K%s\n%s", s, l.drawn)
		return
	}
	fmt.Fprintln(l.w, s)
}

// done ends the bar's line.
func (l *liveWriter) done() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tty && l.drawn != "" {
		fmt.Fprintln(l.w)
	}
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
