package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/follow"
	"github.com/jobsmith/jobs/internal/termbar"
)

var watchCommand = command{
	name: "watch", args: "ID",
	summary: "Follow a job until it ends: a progress bar on stderr, its output items on stdout.",
	more: "\nExits 0 when the job succeeded, 1 when it failed or was canceled. Ctrl-C stops\n" +
		"watching, not the job (jobs cancel ID stops the job).",
	flags: func(fs *flag.FlagSet, e *env) func(*database, []string) error {
		asJSON := fs.Bool("json", false, "print every state and item as a JSON line on stdout instead of the bar")
		return func(db *database, args []string) error {
			id, err := oneID(args)
			if err != nil {
				return err
			}
			// Get first, so that an unknown ID is a plain not-found error.
			if _, err := db.runner.Get(e.ctx, id); err != nil {
				return err
			}
			bar := termbar.New(e.stderr, e.tty)
			stream := follow.Start(e.ctx, db.runner, id, 0)
			defer stream.Stop()
			var last jobs.Snapshot
			ev := stream.Next(e.ctx, nil)
			for ; ev.Kind != follow.End; ev = stream.Next(e.ctx, nil) {
				switch ev.Kind {
				case follow.State:
					last = ev.State
					if *asJSON {
						printLine(e, map[string]any{"state": ev.State})
					} else {
						bar.Update(ev.State)
					}
				case follow.Output:
					if *asJSON {
						printLine(e, map[string]any{"item": ev.Item})
					} else {
						bar.Above(func() { printItem(e, ev.Item) })
					}
				}
			}
			bar.Finish()
			switch {
			case ev.Err != nil:
				return ev.Err
			case e.ctx.Err() != nil:
				return e.ctx.Err()
			case last.Status == jobs.StatusSucceeded:
				return nil
			}
			if last.Error != "" {
				fmt.Fprintf(e.stderr, "job %s %s: %s\n", id, last.Status, last.Error)
			} else {
				fmt.Fprintf(e.stderr, "job %s %s\n", id, last.Status)
			}
			return exitError{exitFailed}
		}
	},
}

// printLine prints v as one line of JSON.
func printLine(e *env, v any) {
	b, _ := json.Marshal(v)
	fmt.Fprintf(e.stdout, "%s\n", b)
}

// printItem prints an output item: a JSON string as its text, a JSON
// object with a "text" field as that text, anything else as compact JSON.
func printItem(e *env, it jobs.OutputItem) {
	var s string
	if json.Unmarshal(it.Data, &s) == nil {
		fmt.Fprintln(e.stdout, s)
		return
	}
	var obj struct {
		Text *string `json:"text"`
	}
	if json.Unmarshal(it.Data, &obj) == nil && obj.Text != nil {
		fmt.Fprintln(e.stdout, *obj.Text)
		return
	}
	var buf bytes.Buffer
	if json.Compact(&buf, it.Data) != nil {
		buf.Write(it.Data)
	}
	fmt.Fprintf(e.stdout, "%s\n", buf.Bytes())
}
