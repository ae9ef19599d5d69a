package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/jobsmith/jobs"
)

var lsCommand = command{
	name: "ls", args: "",
	summary: "List jobs, newest first, one page at a time (--cursor continues).",
	flags: func(fs *flag.FlagSet, e *env) func(*database, []string) error {
		var q jobs.ListQuery
		status := fs.String("status", "", "only jobs in these `statuses` (comma-separated: pending,running,succeeded,failed,canceled)")
		fs.StringVar(&q.Kind, "kind", "", "only jobs of this `kind`")
		fs.StringVar(&q.Queue, "queue", "", "only jobs in this `queue`")
		fs.IntVar(&q.Limit, "limit", 50, "page size, 1 to 1000")
		fs.StringVar(&q.Cursor, "cursor", "", "continue after the page that printed this `cursor`")
		asJSON := fs.Bool("json", false, "print the page as JSON ({\"jobs\": [...], \"next\": cursor})")
		return func(db *database, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			var err error
			if q.Statuses, err = parseStatuses(*status); err != nil {
				return err
			}
			if q.Limit < 1 || q.Limit > 1000 {
				return usagef("--limit %d is outside 1 to 1000", q.Limit)
			}
			page, err := db.runner.List(e.ctx, q)
			if err != nil {
				return err
			}
			if *asJSON {
				return printJSON(e.stdout, page)
			}
			printJobs(e.stdout, page.Jobs)
			if page.Next != "" {
				fmt.Fprintf(e.stderr, "more: jobs ls --cursor %s (with the same filters)\n", page.Next)
			}
			return nil
		}
	},
}

var showCommand = command{
	name: "show", args: "ID",
	summary: "Print everything stored about one job.",
	flags: func(fs *flag.FlagSet, e *env) func(*database, []string) error {
		asJSON := fs.Bool("json", false, "print the job as JSON")
		return func(db *database, args []string) error {
			id, err := oneID(args)
			if err != nil {
				return err
			}
			job, err := db.runner.Get(e.ctx, id)
			if err != nil {
				return err
			}
			if *asJSON {
				return printJSON(e.stdout, job)
			}
			printJob(e.stdout, job)
			return nil
		}
	},
}

var cancelCommand = command{
	name: "cancel", args: "ID...",
	summary: "Cancel jobs: a pending job ends at once; a running one's handler is told to stop.",
	flags: func(fs *flag.FlagSet, e *env) func(*database, []string) error {
		return func(db *database, args []string) error {
			ids, err := parseIDs(args)
			if err != nil {
				return err
			}
			failed := 0
			for _, id := range ids {
				job, err := db.runner.Cancel(e.ctx, id)
				switch {
				case err != nil:
					failed++
					fmt.Fprintf(e.stderr, "jobs cancel: %s\n", errText(err))
				case job.Status == jobs.StatusRunning:
					fmt.Fprintf(e.stdout, "%s cancel requested: its worker stops it\n", id)
				default:
					fmt.Fprintf(e.stdout, "%s %s\n", id, job.Status)
				}
			}
			if failed > 0 {
				return exitError{exitFailed}
			}
			return nil
		}
	},
}

var pauseCommand = queueCommand("pause", "Pause a queue in every process: no new job of it starts; running ones go on.",
	func(db *database, e *env, q string) error { return db.runner.PauseQueue(e.ctx, q) })

var resumeCommand = queueCommand("resume", "Resume a paused queue.",
	func(db *database, e *env, q string) error { return db.runner.ResumeQueue(e.ctx, q) })

// queueCommand is pause or resume.
func queueCommand(name, summary string, do func(*database, *env, string) error) command {
	return command{name: name, args: "QUEUE", summary: summary,
		flags: func(fs *flag.FlagSet, e *env) func(*database, []string) error {
			return func(db *database, args []string) error {
				if len(args) != 1 {
					return usagef("give one queue name")
				}
				if err := do(db, e, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "queue %s %sd\n", args[0], name)
				return nil
			}
		}}
}

var statsCommand = command{
	name: "stats", args: "",
	summary: "Count jobs by queue and status, and list the paused queues.",
	flags: func(fs *flag.FlagSet, e *env) func(*database, []string) error {
		asJSON := fs.Bool("json", false, "print the counts as JSON")
		return func(db *database, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			s, err := db.runner.Stats(e.ctx)
			if err != nil {
				return err
			}
			if *asJSON {
				return printJSON(e.stdout, s)
			}
			printStats(e.stdout, s)
			return nil
		}
	},
}

var pruneCommand = command{
	name: "prune", args: "",
	summary: "Delete finished jobs (succeeded, failed, canceled) older than --older-than, with their output.",
	flags: func(fs *flag.FlagSet, e *env) func(*database, []string) error {
		older := fs.String("older-than", "", "`age` of the finished jobs to delete, such as 7d, 36h or 1d12h (required)")
		return func(db *database, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			if *older == "" {
				return usagef("--older-than is required")
			}
			age, err := parseAge(*older)
			if err != nil {
				return err
			}
			n, err := db.repo.Prune(e.ctx, time.Now().Add(-age))
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "pruned %d jobs finished before %s\n", n, time.Now().Add(-age).UTC().Format(time.DateTime))
			return nil
		}
	},
}

var migrateCommand = command{
	name: "migrate", args: "", create: true,
	summary: "Create the jobs schema, or upgrade it to this version's (services do this too when they start).",
	flags: func(fs *flag.FlagSet, e *env) func(*database, []string) error {
		return func(db *database, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			if db.before == db.after {
				fmt.Fprintf(e.stdout, "schema up to date (version %d)\n", db.after)
			} else {
				fmt.Fprintf(e.stdout, "schema migrated from version %d to %d\n", db.before, db.after)
			}
			return nil
		}
	},
}

func noArgs(args []string) error {
	if len(args) > 0 {
		return usagef("unexpected argument %q", clip(args[0]))
	}
	return nil
}

// oneID parses the single job ID of args.
func oneID(args []string) (uuid.UUID, error) {
	if len(args) != 1 {
		return uuid.Nil, usagef("give one job ID")
	}
	ids, err := parseIDs(args)
	if err != nil {
		return uuid.Nil, err
	}
	return ids[0], nil
}

// parseIDs parses job IDs: at least one, each in the canonical form.
func parseIDs(args []string) ([]uuid.UUID, error) {
	if len(args) == 0 {
		return nil, usagef("give at least one job ID")
	}
	ids := make([]uuid.UUID, len(args))
	for i, a := range args {
		id, err := uuid.Parse(a)
		if err != nil || len(a) != 36 {
			return nil, usagef("%q is not a job ID", clip(a))
		}
		ids[i] = id
	}
	return ids, nil
}

// parseStatuses parses a comma-separated list of statuses; "" is none.
func parseStatuses(s string) ([]jobs.Status, error) {
	if s == "" {
		return nil, nil
	}
	var out []jobs.Status
	for _, f := range strings.Split(s, ",") {
		st := jobs.Status(strings.TrimSpace(f))
		if !st.Valid() {
			return nil, usagef("unknown status %q (pending, running, succeeded, failed or canceled)", clip(string(st)))
		}
		out = append(out, st)
	}
	return out, nil
}

// parseAge parses a Go duration with an optional leading count of days:
// "7d", "36h", "1d12h", "90m".
func parseAge(s string) (time.Duration, error) {
	bad := usagef("--older-than %q is not an age such as 7d, 36h or 1d12h", clip(s))
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		n, err := strconv.Atoi(s[:i])
		if err != nil || n < 0 || n > 100*365 {
			return 0, bad
		}
		days, s = time.Duration(n)*24*time.Hour, s[i+1:]
	}
	var rest time.Duration
	if s != "" {
		var err error
		if rest, err = time.ParseDuration(s); err != nil || rest < 0 {
			return 0, bad
		}
	}
	return days + rest, nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printJobs prints a table of jobs.
func printJobs(w io.Writer, js []*jobs.Job) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKIND\tQUEUE\tSTATUS\tPROGRESS\tATTEMPT\tCREATED")
	for _, j := range js {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d/%d\t%s\n", j.ID, j.Kind, j.Queue, j.Status,
			percent(j.Progress.Fraction), j.Attempt, j.MaxAttempts, j.CreatedAt.Format(time.DateTime))
	}
	tw.Flush()
}

func percent(f float64) string { return fmt.Sprintf("%d%%", int(math.Floor(f*100))) }

// printJob prints one job as "field: value" lines, leaving out empty ones.
func printJob(w io.Writer, j *jobs.Job) {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	line := func(k, v string) {
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
	line("id", j.ID.String())
	line("kind", j.Kind)
	line("queue", j.Queue)
	line("status", string(j.Status))
	line("progress", strings.TrimSpace(percent(j.Progress.Fraction)+" "+j.Progress.Message))
	line("attempt", fmt.Sprintf("%d of %d", j.Attempt, j.MaxAttempts))
	line("priority", strconv.Itoa(j.Priority))
	line("unique key", j.UniqueKey)
	line("created", at(j.CreatedAt))
	line("run at", at(j.RunAt))
	line("started", at(j.StartedAt))
	line("finished", at(j.FinishedAt))
	if j.LeaseOwner != "" {
		line("lease", j.LeaseOwner+" until "+at(j.LeaseExpiresAt))
	}
	if j.CancelRequested {
		line("cancel", "requested")
	}
	line("payload", string(j.Payload))
	line("result", string(j.Result))
	line("checkpoint", string(j.Checkpoint))
	if j.OutputSeq > 0 {
		line("output", fmt.Sprintf("%d items (jobs watch %s prints them)", j.OutputSeq, j.ID))
	}
	line("error", j.Error)
	for _, a := range j.Errors {
		line(fmt.Sprintf("attempt %d", a.Attempt), a.Error)
	}
	tw.Flush()
}

// printStats prints a table of counts per queue and status.
func printStats(w io.Writer, s *jobs.Stats) {
	paused := map[string]bool{}
	for _, q := range s.Paused {
		paused[q] = true
	}
	queues := make([]string, 0, len(s.ByQueue))
	for q := range s.ByQueue {
		queues = append(queues, q)
	}
	for q := range paused {
		if s.ByQueue[q] == nil {
			queues = append(queues, q)
		}
	}
	slices.Sort(queues)
	statuses := []jobs.Status{jobs.StatusPending, jobs.StatusRunning, jobs.StatusSucceeded, jobs.StatusFailed, jobs.StatusCanceled}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "QUEUE\t")
	for _, st := range statuses {
		fmt.Fprintf(tw, "%s\t", strings.ToUpper(string(st)))
	}
	fmt.Fprintln(tw)
	row := func(name string, counts map[jobs.Status]int, note string) {
		fmt.Fprintf(tw, "%s\t", name)
		for _, st := range statuses {
			fmt.Fprintf(tw, "%d\t", counts[st])
		}
		fmt.Fprintf(tw, "%s\n", note)
	}
	for _, q := range queues {
		note := ""
		if paused[q] {
			note = "paused"
		}
		row(q, s.ByQueue[q], note)
	}
	row("total", s.ByStatus, "")
	tw.Flush()
}
