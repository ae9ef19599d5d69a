package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
)

// filterFlags are the flags that select jobs: a jobs.ListQuery.
type filterFlags struct {
	status, kind, queue, before string
	limit                       int
}

// add defines the flags on fs; limitHelp says what --limit means there.
func (f *filterFlags) add(fs *flag.FlagSet, limitHelp string) {
	fs.StringVar(&f.status, "status", "", "only jobs in these statuses, comma-separated (pending, running, succeeded, failed, canceled)")
	fs.StringVar(&f.kind, "kind", "", "only jobs of this kind")
	fs.StringVar(&f.queue, "queue", "", "only jobs of this queue")
	fs.StringVar(&f.before, "before", "", "only jobs created before this: a time (RFC 3339) or an age such as 90m, 36h or 7d")
	fs.IntVar(&f.limit, "limit", 0, limitHelp)
}

// set reports whether any filter was given.
func (f *filterFlags) set() bool {
	return f.status != "" || f.kind != "" || f.queue != "" || f.before != ""
}

// query returns the ListQuery of the flags, as of now.
func (f *filterFlags) query(now time.Time) (jobs.ListQuery, error) {
	q := jobs.ListQuery{Kind: f.kind, Queue: f.queue, Limit: f.limit}
	if f.status != "" {
		for _, s := range strings.Split(f.status, ",") {
			st := jobs.Status(strings.TrimSpace(s))
			if !st.Valid() {
				return q, usagef("unknown status %q: use pending, running, succeeded, failed or canceled", s)
			}
			q.Statuses = append(q.Statuses, st)
		}
	}
	if f.before != "" {
		t, err := parseBefore(f.before, now)
		if err != nil {
			return q, err
		}
		q.CreatedBefore = t
	}
	if f.limit < 0 || f.limit > 1000 {
		return q, usagef("--limit %d is not in [0, 1000]", f.limit)
	}
	return q, nil
}

// parseBefore reads a time (RFC 3339) or an age (a Go duration, or a
// number of days such as 7d) before now.
func parseBefore(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := parseAge(s)
	if err != nil {
		return time.Time{}, usagef("--before %q is neither a time (RFC 3339, such as 2026-12-01T00:00:00Z) nor an age (90m, 36h, 7d)", s)
	}
	return now.Add(-d), nil
}

// parseAge reads a positive duration: a Go duration (90m, 36h) or a whole
// number of days (7d).
func parseAge(s string) (time.Duration, error) {
	var d time.Duration
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days > 100000 {
			return 0, fmt.Errorf("bad number of days %q", n)
		}
		d = time.Duration(days) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, err
		}
	}
	if d <= 0 {
		return 0, fmt.Errorf("%q is not positive", s)
	}
	return d, nil
}

// parseID reads a job ID.
func parseID(s string) (uuid.UUID, error) {
	id, err := uuid.Parse(s)
	if err != nil || len(s) != 36 {
		return uuid.Nil, usagef("%q is not a job ID (a UUID such as 01938f5e-7d4a-7c3b-9a2e-5f1d2c3b4a59)", s)
	}
	return id, nil
}
