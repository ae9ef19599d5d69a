package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jobsmith/jobs"
)

// This file holds the commands that read: ls, show, stats; and those of
// queues and schema: pause, resume, migrate.

func init() {
	commands = append(commands,
		command{"ls", "[flags]", "List jobs, newest first.\nWith --json, one page as JSON ({\"jobs\": […], \"next\": cursor}).", runList},
		command{"show", "[flags] ID", "Show one job.\nWith --json, the job as JSON.", runShow},
		command{"stats", "[flags]", "Count jobs by status, per queue and kind, and list the paused queues.", runStats},
		command{"pause", "[flags] QUEUE", "Pause a queue: none of its jobs starts until resume.\nRunning jobs finish; the pause holds for every process.", runPause},
		command{"resume", "[flags] QUEUE", "Resume a paused queue.", runResume},
		command{"migrate", "[flags]", "Create or upgrade the schema of the database (every command does it on open).", runMigrate},
	)
}

func runList(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	var f filterFlags
	f.add(fs, "jobs per page, 1 to 1000 (default 50)")
	cursor := fs.String("cursor", "", "continue after this job (the \"next\" of the previous page)")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := e.parse(fs, args, 0, 0); err != nil {
		return err
	}
	q, err := f.query(time.Now())
	if err != nil {
		return err
	}
	if *cursor != "" {
		if _, err := parseID(*cursor); err != nil {
			return usagef("--cursor: %v", err)
		}
	}
	q.Cursor = *cursor
	if err := e.open(ctx); err != nil {
		return err
	}
	p, err := e.repo.List(ctx, q)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(e.stdout, p)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tKIND\tQUEUE\tATTEMPT\tPROGRESS\tCREATED\tERROR")
	for _, j := range p.Jobs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%d\t%3.0f%%\t%s\t%s\n", j.ID, j.Status, j.Kind, j.Queue, j.Attempt, j.MaxAttempts,
			j.Progress.Fraction*100, j.CreatedAt.Format(time.RFC3339), clip(j.Error, 60))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if p.Next != "" {
		fmt.Fprintf(e.stderr, "more: jobs ls --cursor %s\n", p.Next)
	}
	return nil
}

func runShow(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	asJSON := fs.Bool("json", false, "print JSON")
	id, err := e.job(ctx, fs, args)
	if err != nil {
		return err
	}
	j, err := e.repo.Get(ctx, id)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(e.stdout, j)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, v)
		}
	}
	at := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.Format(time.RFC3339Nano)
	}
	row("id", j.ID.String())
	row("kind", j.Kind)
	row("queue", j.Queue)
	row("status", string(j.Status))
	row("progress", strings.TrimSpace(fmt.Sprintf("%.0f%% %s", j.Progress.Fraction*100, j.Progress.Message)))
	row("attempt", fmt.Sprintf("%d of %d", j.Attempt, j.MaxAttempts))
	row("priority", fmt.Sprint(j.Priority))
	row("payload", clip(string(j.Payload), 200))
	row("result", clip(string(j.Result), 200))
	row("error", j.Error)
	row("unique key", j.UniqueKey)
	for _, k := range slices.Sorted(maps.Keys(j.Metadata)) {
		row("metadata "+k, j.Metadata[k])
	}
	if j.CancelRequested && j.Status == jobs.StatusRunning {
		row("cancel", "requested")
	}
	row("run at", at(j.RunAt))
	row("created", at(j.CreatedAt))
	row("started", at(j.StartedAt))
	row("finished", at(j.FinishedAt))
	row("lease owner", j.LeaseOwner)
	if j.OutputSeq > 0 {
		row("output", fmt.Sprintf("%d items (jobs watch %s)", j.OutputSeq, j.ID))
	}
	for _, ae := range j.Errors {
		row(fmt.Sprintf("attempt %d", ae.Attempt), at(ae.At)+" "+clip(ae.Error, 200))
	}
	return tw.Flush()
}

func runStats(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := e.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if err := e.open(ctx); err != nil {
		return err
	}
	s, err := e.repo.Stats(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(e.stdout, s)
	}
	statuses := []jobs.Status{jobs.StatusWaiting, jobs.StatusPending, jobs.StatusRunning, jobs.StatusSucceeded, jobs.StatusFailed, jobs.StatusCanceled}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	section := func(title string, by map[string]map[jobs.Status]int) {
		queues := title == "QUEUE"
		fmt.Fprintf(tw, "%s\t", title)
		for _, st := range statuses {
			fmt.Fprintf(tw, "%s\t", st)
		}
		if queues {
			fmt.Fprint(tw, "oldest wait\t") // the queue's latency
		}
		fmt.Fprintln(tw)
		for _, name := range slices.Sorted(maps.Keys(by)) {
			label := name
			if queues && slices.Contains(s.Paused, name) {
				label += " (paused)"
			}
			fmt.Fprintf(tw, "%s\t", label)
			for _, st := range statuses {
				fmt.Fprintf(tw, "%d\t", by[name][st])
			}
			if queues {
				wait := "-"
				if t, ok := s.OldestPending[name]; ok {
					wait = max(time.Since(t), 0).Round(time.Second).String()
				}
				fmt.Fprintf(tw, "%s\t", wait)
			}
			fmt.Fprintln(tw)
		}
	}
	section("QUEUE", s.ByQueue)
	fmt.Fprintln(tw)
	section("KIND", s.ByKind)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "\ntotal %d", s.Total)
	if len(s.Paused) > 0 {
		fmt.Fprintf(e.stdout, "; paused: %s", strings.Join(s.Paused, ", "))
	}
	fmt.Fprintln(e.stdout)
	return nil
}

func runPause(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	return setPaused(ctx, e, fs, args, true)
}

func runResume(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	return setPaused(ctx, e, fs, args, false)
}

func setPaused(ctx context.Context, e *env, fs *flag.FlagSet, args []string, pause bool) error {
	pos, err := e.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if err := e.open(ctx); err != nil {
		return err
	}
	if pause {
		err = e.repo.PauseQueue(ctx, pos[0])
	} else {
		err = e.repo.ResumeQueue(ctx, pos[0])
	}
	if err != nil {
		return err
	}
	word := map[bool]string{true: "paused", false: "resumed"}[pause]
	fmt.Fprintf(e.stdout, "queue %s %s\n", pos[0], word)
	return nil
}

func runMigrate(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	if _, err := e.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if err := e.open(ctx); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, "schema up to date")
	return nil
}

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// clip shortens s to at most n runes, on one line.
func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
