// Command jobs inspects and steers the jobs of a database: list and show
// them, watch one, retry, cancel and delete them (one or many), pause and
// resume queues, count them, prune old ones, and migrate the schema.
//
//	go install github.com/jobsmith/jobs/cmd/jobs@latest
//	jobs --db data/jobs.db ls --status failed
//	JOBS_DATABASE_URL=postgres://… jobs retry --failed --kind transcribe
//
// --db (or JOBS_DATABASE_URL) takes an SQLite file path or a postgres://
// URL. Every subcommand takes -h. The exit status is 0 on success, 1 when
// the operation failed (an unknown job, a conflict, the database), and 2
// for a usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/jobspg"
	"github.com/jobsmith/jobs/jobsqlite"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv("JOBS_DATABASE_URL"), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// command is one subcommand.
type command struct {
	name, args, help string
	// run parses its flags from fs (already holding the shared ones) and
	// does its work.
	run func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error
}

// env is what a subcommand works with.
type env struct {
	db     string
	stdout io.Writer
	stderr io.Writer
	repo   jobs.JobRepository
}

var commands []command // commands.go, admin.go, watch.go

const mainUsage = `usage: jobs [--db PATH|URL] COMMAND [flags] [args]

--db takes an SQLite file path or a postgres:// URL; the default is
$JOBS_DATABASE_URL. Commands:
`

// run runs the command line args and returns the exit status.
func run(ctx context.Context, args []string, dbEnv string, stdout, stderr io.Writer) int {
	top := flag.NewFlagSet("jobs", flag.ContinueOnError)
	top.SetOutput(stderr)
	db := top.String("db", dbEnv, "SQLite file path or postgres:// URL (default $JOBS_DATABASE_URL)")
	top.Usage = func() { printMainUsage(stderr) }
	if err := top.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	rest := top.Args()
	if len(rest) == 0 {
		printMainUsage(stderr)
		return exitUsage
	}
	name := rest[0]
	if name == "help" {
		printMainUsage(stdout)
		return exitOK
	}
	var cmd *command
	for i := range commands {
		if commands[i].name == name {
			cmd = &commands[i]
		}
	}
	if cmd == nil {
		fmt.Fprintf(stderr, "jobs: unknown command %q (see jobs help)\n", name)
		return exitUsage
	}
	fs := flag.NewFlagSet("jobs "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(db, "db", *db, "SQLite file path or postgres:// URL (default $JOBS_DATABASE_URL)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: jobs %s %s\n\n%s\n\nFlags:\n", cmd.name, cmd.args, cmd.help)
		fs.PrintDefaults()
	}
	e := &env{stdout: stdout, stderr: stderr}
	err := cmd.run(ctx, e, fs, rest[1:])
	if e.repo != nil {
		_ = e.repo.Close()
	}
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "jobs %s: %s (see jobs %s -h)\n", name, ue.msg, name)
		return exitUsage
	case errors.Is(err, errFlagParse):
		return exitUsage // the flag package has said why
	}
	fmt.Fprintf(stderr, "jobs %s: %v\n", name, err)
	return exitError
}

// errFlagParse marks an error that the flag package already printed.
var errFlagParse = errors.New("bad flags")

// parse parses the subcommand's flags and returns its positional
// arguments, refusing more than max of them (max < 0: any number) or fewer
// than min. It does not open the database: see open.
func (e *env) parse(fs *flag.FlagSet, args []string, min, max int) ([]string, error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, errFlagParse
	}
	pos := fs.Args()
	for _, a := range pos {
		if strings.HasPrefix(a, "-") {
			return nil, usagef("flag %s after an argument: put flags first", a)
		}
	}
	switch {
	case len(pos) < min:
		return nil, usagef("expected %d argument(s), got %d", min, len(pos))
	case max >= 0 && len(pos) > max:
		return nil, usagef("unexpected argument %q", pos[max])
	}
	e.db = fs.Lookup("db").Value.String()
	return pos, nil
}

// job parses the command line of a command on one job (flags, then its
// ID), opens the database and returns the ID.
func (e *env) job(ctx context.Context, fs *flag.FlagSet, args []string) (uuid.UUID, error) {
	pos, err := e.parse(fs, args, 1, 1)
	if err != nil {
		return uuid.Nil, err
	}
	id, err := parseID(pos[0])
	if err != nil {
		return uuid.Nil, err
	}
	return id, e.open(ctx)
}

// open opens the repository named by --db, once the command line is known
// to be valid: a postgres:// (or postgresql://) URL, or an SQLite file
// path (created if missing). Opening creates or migrates the schema.
func (e *env) open(ctx context.Context) error {
	var err error
	switch {
	case e.db == "":
		return usagef("no database: pass --db PATH|URL or set JOBS_DATABASE_URL")
	case strings.HasPrefix(e.db, "postgres://") || strings.HasPrefix(e.db, "postgresql://"):
		e.repo, err = jobspg.Open(ctx, e.db)
	default:
		e.repo, err = jobsqlite.Open(ctx, e.db)
	}
	if err != nil {
		e.repo = nil
	}
	return err
}

// commandOrder is the order of the commands in the usage.
var commandOrder = []string{"ls", "show", "watch", "stats", "retry", "cancel", "delete", "prune", "pause", "resume", "migrate"}

// printMainUsage lists the commands.
func printMainUsage(w io.Writer) {
	fmt.Fprint(w, mainUsage)
	cs := slices.Clone(commands)
	slices.SortFunc(cs, func(a, b command) int {
		return slices.Index(commandOrder, a.name) - slices.Index(commandOrder, b.name)
	})
	for _, c := range cs {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, firstLine(c.help))
	}
	fmt.Fprintln(w, "\nRun jobs COMMAND -h for the flags of a command.")
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
