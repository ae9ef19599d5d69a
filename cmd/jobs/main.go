// Command jobs operates the jobs stored by the jobs library in SQLite or
// PostgreSQL: list and inspect them, watch one run, cancel, retry or delete
// them, pause and resume queues, print counts, prune old jobs and create
// or upgrade the schema. It works beside running services: every change it
// makes goes through the same repository calls as theirs.
//
// Install it with
//
//	go install github.com/jobsmith/jobs/cmd/jobs@latest
//
// and run `jobs help` for the commands. The database is --db, or
// JOBS_DATABASE_URL, or data/jobs.db: an SQLite file path (sqlite: prefix
// optional) or a postgres:// URL.
//
// Exit statuses: 0 success; 1 a failed operation (the database unreachable,
// a job not found, a conflict) or, for watch, a job that ended failed or
// canceled; 2 a usage error; 130 interrupted.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/jobsmith/jobs/internal/termbar"
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
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// env is the program's environment: its streams and variables.
type env struct {
	ctx    context.Context
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	tty    bool // stderr is a terminal
}

// command is one subcommand.
type command struct {
	name    string
	args    string // synopsis of the arguments after the flags
	summary string
	more    string // said after summary in the command's own help
	// flags declares the command's flags on fs and returns the function
	// that runs it with the remaining arguments.
	flags  func(fs *flag.FlagSet, e *env) func(db *database, args []string) error
	create bool // the command may create a missing SQLite database
}

var commands = []command{
	lsCommand, showCommand, watchCommand, cancelCommand,
	pauseCommand, resumeCommand, statsCommand, pruneCommand, migrateCommand,
}

// usageError is a mistake on the command line: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// run is the program: it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	e := &env{ctx: ctx, stdout: stdout, stderr: stderr, getenv: getenv}
	if f, ok := stderr.(*os.File); ok {
		e.tty = termbar.IsTerminal(f)
	}
	if len(args) == 0 {
		printUsage(stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			return run(ctx, []string{args[1], "-h"}, stdout, stderr, getenv)
		}
		printUsage(stdout)
		return exitOK
	}
	for _, c := range commands {
		if c.name == name {
			return runCommand(e, c, args[1:])
		}
	}
	fmt.Fprintf(stderr, "jobs: unknown command %q (run `jobs help`)\n", clip(name))
	return exitUsage
}

// runCommand parses c's flags, opens the database and runs c.
func runCommand(e *env, c command, args []string) int {
	fs := flag.NewFlagSet("jobs "+c.name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	dbFlag := fs.String("db", "", "SQLite `path` or postgres:// URL (default $JOBS_DATABASE_URL, else data/jobs.db)")
	exec := c.flags(fs, e)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: jobs %s\n\n%s\n\nflags:\n", strings.TrimSpace(c.name+" [flags] "+c.args), c.summary+c.more)
		fs.PrintDefaults()
	}
	if err := fs.Parse(interleave(fs, args)); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(e.stdout)
			fs.Usage()
			return exitOK
		}
		return exitUsage // flag has printed the error and the usage
	}
	target := *dbFlag
	if target == "" {
		target = e.getenv("JOBS_DATABASE_URL")
	}
	if target == "" {
		target = "data/jobs.db"
	}
	db, err := openDatabase(e.ctx, target, c.create)
	if err == nil {
		defer db.close()
		err = exec(db, fs.Args())
	}
	return report(e, c.name, err)
}

// report prints err, if any, and returns the exit status it calls for.
func report(e *env, name string, err error) int {
	var ue usageError
	var ee exitError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ue):
		fmt.Fprintf(e.stderr, "jobs %s: %s (see jobs %s -h)\n", name, ue.msg, name)
		return exitUsage
	case e.ctx.Err() != nil:
		fmt.Fprintf(e.stderr, "jobs %s: interrupted\n", name)
		return exitInterrupted
	}
	fmt.Fprintf(e.stderr, "jobs %s: %s\n", name, errText(err))
	return exitFailed
}

// errText is err's message without the "jobs: " that starts the library's
// errors: the command's own prefix says it already.
func errText(err error) string { return strings.TrimPrefix(err.Error(), "jobs: ") }

// exitError ends the program with code after the command has said why.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// interleave moves the flags in args before the positional arguments, so
// that `jobs show ID --json` works as well as `jobs show --json ID`. A "--"
// ends the flags as usual.
func interleave(fs *flag.FlagSet, args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			pos = append(pos, args[i+1:]...)
			return append(append(flags, "--"), pos...)
		case len(a) > 1 && a[0] == '-':
			flags = append(flags, a)
			name := strings.TrimLeft(a, "-")
			if strings.Contains(name, "=") {
				continue
			}
			if f := fs.Lookup(name); f != nil && !isBool(f) && i+1 < len(args) {
				i++
				flags = append(flags, args[i])
			}
		default:
			pos = append(pos, a)
		}
	}
	if len(pos) > 0 {
		flags = append(flags, "--")
	}
	return append(flags, pos...)
}

func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "jobs operates the jobs of a jobs database (SQLite or PostgreSQL).")
	fmt.Fprintln(w, "\nusage: jobs COMMAND [flags] [arguments]\n\ncommands:")
	cs := append([]command(nil), commands...)
	sort.Slice(cs, func(i, j int) bool { return cs[i].name < cs[j].name })
	for _, c := range cs {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nEvery command takes --db (an SQLite path or a postgres:// URL; default")
	fmt.Fprintln(w, "$JOBS_DATABASE_URL, else data/jobs.db) and -h for its own help.")
}

// clip shortens user input quoted in messages.
func clip(s string) string {
	if r := []rune(s); len(r) > 60 {
		return string(r[:59]) + "…"
	}
	return s
}
