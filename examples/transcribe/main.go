// Command transcribe runs one transcription job in-process on the embedded
// SQLite database and shows its progress in the terminal.
//
// Run it from the repository root:
//
//	go run ./examples/transcribe --tone 30s
//	go run ./examples/transcribe talk.wav
//	go run ./examples/transcribe --resume 01890a5d-ac96-774b-bcce-b302099a8057
//
// It enqueues the job (or, with --resume, follows an existing one, for
// example one created through examples/httpserver on the same database),
// runs it with an in-process runner and draws a progress bar with the
// stage and an ETA on stderr. It prints each segment on stdout as it
// arrives (as a checkpoint stores it, every --checkpoint), then the
// transcript. A job whose run crashed is taken back by the next run on
// the database once its lease expires (30s), and resumes at the first
// segment after its last checkpoint. Ctrl-C cancels the job: it ends
// canceled and the program exits with status 130 (a second Ctrl-C quits at
// once). Other exit statuses: 0 done, 1 the job failed or an error, 2 bad
// usage. Under go run, which reports a program's failure as "exit status
// 130" and then exits 1 itself, the shell sees 1: build the program to see
// 130.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/examples/internal/transcribe"
	"github.com/jobsmith/jobs/internal/follow"
	"github.com/jobsmith/jobs/internal/termbar"
	"github.com/jobsmith/jobs/jobsqlite"
)

// Exit statuses.
const (
	exitOK          = 0
	exitFailed      = 1
	exitUsage       = 2
	exitInterrupted = 130 // 128 + SIGINT, as shells report it
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, stop, os.Args[1:], os.Stdout, os.Stderr, termbar.IsTerminal(os.Stderr))
	stop()
	os.Exit(code)
}

// options are the parsed command line.
type options struct {
	audio    transcribe.AudioURL
	audioDir string
	resume   uuid.UUID
	db       string
	lang     string
	delay    time.Duration
	every    time.Duration // least time between checkpoints
	asJSON   bool
}

func parseArgs(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("transcribe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: transcribe [flags] FILE.wav | --tone 30s | --resume JOB_ID")
		fs.PrintDefaults()
	}
	var o options
	tone := fs.Duration("tone", 0, "transcribe a generated `length` of tone instead of a file")
	resume := fs.String("resume", "", "follow the existing job `ID` instead of creating one")
	fs.StringVar(&o.db, "db", "data/jobs.db", "SQLite database `path` (created if missing)")
	fs.StringVar(&o.lang, "lang", "en", "language tag of the audio")
	fs.DurationVar(&o.delay, "delay", 100*time.Millisecond, "stand-in model time per half second of audio")
	fs.StringVar(&o.audioDir, "audio-dir", "data/audio", "directory of the WAV files that resumed jobs name")
	fs.DurationVar(&o.every, "checkpoint", transcribe.DefaultCheckpointInterval,
		"least `time` between checkpoints, which store the segments done so far (0: after every segment)")
	fs.BoolVar(&o.asJSON, "json", false, "print each segment and the result as JSON, one per line")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	modes := 0
	if *tone != 0 {
		modes++
	}
	if *resume != "" {
		modes++
	}
	if fs.NArg() > 0 {
		modes++
	}
	switch {
	case modes != 1 || fs.NArg() > 1:
		return o, errors.New("give exactly one of FILE.wav, --tone or --resume (see -h)")
	case o.delay < 0 || o.delay > 10*time.Second:
		return o, errors.New("--delay must be from 0s to 10s")
	case o.every < 0 || o.every > time.Hour:
		return o, errors.New("--checkpoint must be from 0s to 1h")
	case *resume != "":
		id, err := uuid.Parse(*resume)
		if err != nil || len(*resume) != 36 {
			return o, fmt.Errorf("--resume %q is not a job ID", clip(*resume))
		}
		o.resume = id
		return o, nil
	case *tone != 0:
		a, err := transcribe.ParseAudioURL("tone:" + tone.String())
		if err != nil {
			return o, fmt.Errorf("--tone: %v", err)
		}
		o.audio = a
	default:
		path := fs.Arg(0)
		if _, err := os.Stat(path); err != nil {
			return o, fmt.Errorf("cannot read %s: %v", clip(path), errors.Unwrap(err))
		}
		a, err := transcribe.ParseAudioURL("file:" + filepath.Base(path))
		if err != nil {
			return o, fmt.Errorf("%s: %v", clip(path), err)
		}
		o.audio, o.audioDir = a, filepath.Dir(path)
	}
	if _, err := (transcribe.Request{AudioURL: o.audio.String(), Language: o.lang}).Validate(); err != nil {
		return o, err
	}
	return o, nil
}

// run is the program. interrupt is done on Ctrl-C; stopSignals restores
// the default signal behaviour, so that a second Ctrl-C ends the process.
func run(interrupt context.Context, stopSignals func(), args []string, stdout, stderr io.Writer, tty bool) int {
	o, err := parseArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "transcribe: %v\n", err)
		return exitUsage
	}
	ctx := context.Background() // the work goes on after Ctrl-C, until the job is canceled
	repo, err := jobsqlite.Open(ctx, o.db)
	if err != nil {
		fmt.Fprintf(stderr, "transcribe: cannot open the database: %v\n", err)
		return exitFailed
	}
	defer repo.Close()
	runner, err := jobs.NewRunner(repo, jobs.WithConcurrency(1), jobs.WithShutdown(2*time.Second, 0))
	if err != nil {
		fmt.Fprintf(stderr, "transcribe: %v\n", err)
		return exitFailed
	}
	// --checkpoint 0 means after every segment; to Options, zero would
	// mean its default.
	transcribe.Register(runner, o.audioDir, transcribe.Options{Delay: o.delay, CheckpointInterval: max(o.every, time.Nanosecond)})
	runCtx, stopRunner := context.WithCancel(ctx)
	runDone := make(chan error, 1)
	go func() { runDone <- runner.Run(runCtx) }()
	defer func() {
		stopRunner()
		<-runDone
	}()

	id := o.resume
	if id == uuid.Nil {
		job, err := runner.Enqueue(ctx, transcribe.Kind, transcribe.Request{AudioURL: o.audio.String(), Language: o.lang})
		if err != nil {
			fmt.Fprintf(stderr, "transcribe: %v\n", err)
			return exitFailed
		}
		id = job.ID
	}
	fmt.Fprintf(stderr, "job %s (Ctrl-C cancels it)\n", id)

	interrupted := make(chan struct{})
	stopCancel := context.AfterFunc(interrupt, func() {
		close(interrupted)
		stopSignals()
		if _, err := runner.Cancel(ctx, id); err != nil && !errors.Is(err, jobs.ErrConflict) {
			fmt.Fprintf(stderr, "\ntranscribe: cancel: %v\n", err)
		}
	})
	defer stopCancel()

	// The bar follows the job's states, and its segments are printed above
	// the bar as their checkpoints store them; the job's end comes after
	// its last segment.
	bar := termbar.New(stderr, tty)
	stream := follow.Start(ctx, runner, id, 0)
	defer stream.Stop()
	ev := stream.Next(ctx, nil)
	for ; ev.Kind != follow.End; ev = stream.Next(ctx, nil) {
		switch ev.Kind {
		case follow.State:
			bar.Update(ev.State)
		case follow.Output:
			bar.Above(func() { printSegment(stdout, ev.Item.Data, o.asJSON) })
		}
	}
	bar.Finish()
	if ev.Err != nil {
		fmt.Fprintf(stderr, "transcribe: %v\n", ev.Err)
		return exitFailed
	}
	return report(ctx, runner, id, interrupted, stdout, stderr, o.asJSON)
}

// report prints the outcome of the finished job and returns the exit status.
func report(ctx context.Context, r *jobs.Runner, id uuid.UUID, interrupted <-chan struct{}, stdout, stderr io.Writer, asJSON bool) int {
	job, err := r.Get(ctx, id)
	if err != nil {
		fmt.Fprintf(stderr, "transcribe: %v\n", err)
		return exitFailed
	}
	switch job.Status {
	case jobs.StatusCanceled:
		fmt.Fprintln(stderr, "canceled")
		select {
		case <-interrupted:
			return exitInterrupted
		default:
			return exitFailed // canceled by someone else
		}
	case jobs.StatusFailed:
		fmt.Fprintf(stderr, "failed: %s\n", job.Error)
		return exitFailed
	}
	if asJSON || job.Kind != transcribe.Kind {
		fmt.Fprintf(stdout, "%s\n", job.Result)
		return exitOK
	}
	var t transcribe.Transcript
	if err := json.Unmarshal(job.Result, &t); err != nil {
		fmt.Fprintf(stderr, "transcribe: the result is not a transcript: %v\n", err)
		return exitFailed
	}
	printTranscript(stdout, t)
	return exitOK
}

// printSegment writes one item of the job's output: a segment as a line
// "   1.50–2.00    silence  -120.0 dB", or as its JSON with asJSON, as
// anything that is not a segment.
func printSegment(w io.Writer, item json.RawMessage, asJSON bool) {
	var s transcribe.Segment
	if asJSON || json.Unmarshal(item, &s) != nil || s.Text == "" {
		fmt.Fprintf(w, "%s\n", item)
		return
	}
	pitch := ""
	if s.PitchHz > 0 {
		pitch = fmt.Sprintf("  %4.0f Hz", s.PitchHz)
	}
	fmt.Fprintf(w, "  %7.2f–%-7.2f %-8s %6.1f dB%s\n", s.Start, s.End, s.Text, s.LevelDB, pitch)
}

// printTranscript writes the transcript's text.
func printTranscript(w io.Writer, t transcribe.Transcript) {
	lang := ""
	if t.Language != "" {
		lang = ", " + t.Language
	}
	fmt.Fprintf(w, "Transcript (%.1f s%s): %s\n", t.Duration, lang, t.Text)
}

func clip(s string) string {
	if r := []rune(s); len(r) > 60 {
		return string(r[:60]) + "…"
	}
	return strings.TrimSpace(s)
}
