package jobs

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/robfig/cron/v3"
)

// Schedule enqueues a job on a timetable: one job per tick, whatever the
// number of processes that declare the same schedule (see
// [Runner.Schedule]).
type Schedule struct {
	// Spec says when the schedule ticks: a cron expression of five fields
	// (minute, hour, day of month, month, day of week) or six (seconds
	// first), a descriptor (@yearly, @monthly, @weekly, @daily, @hourly),
	// or "@every D" with a Go duration D of whole seconds, at least one:
	// its ticks fall on the multiples of D since the Unix epoch, so every
	// process computes the same ones.
	Spec string
	// Location is the time zone in which the cron fields are read; nil
	// means UTC. It does not change "@every" ticks.
	Location *time.Location
	// Kind, Payload and Options make the job of each tick, as for
	// [Runner.Enqueue]. The job's RunAt is its tick (so it may start at
	// once, and its handler can tell which tick it serves); a WithRunAt
	// option is overridden.
	Kind    string
	Payload any
	Options []EnqueueOption
	// CatchUp decides what happens to the ticks that passed while no
	// process that declares the schedule was running: with CatchUp, a
	// runner that starts enqueues one job for the latest of them; without
	// it, they are skipped and the schedule goes on at its next tick.
	CatchUp bool
}

// ScheduleInfo is the stored state of a schedule, as [Runner.Schedules]
// lists it and [JobRepository.Tick] writes it.
type ScheduleInfo struct {
	Name string `json:"name"`
	Spec string `json:"spec"`
	Kind string `json:"kind"`
	// LastTick is the latest tick that enqueued a job; zero before the
	// first.
	LastTick time.Time `json:"last_tick,omitzero"`
	// NextTick is the next tick as computed by the runner that last wrote
	// the schedule; it stays in the past once no runner declares the
	// schedule any more.
	NextTick time.Time `json:"next_tick,omitzero"`
}

// ScheduleTick is one schedule's write for [JobRepository.Tick]: its
// state, and the job of its LastTick (nil to store the state only).
type ScheduleTick struct {
	ScheduleInfo
	Job *Job
}

// scheduled is one schedule declared on a runner.
type scheduled struct {
	name  string
	s     Schedule
	when  cron.Schedule // nil for "@every"
	every time.Duration
	loc   *time.Location
}

// cronParser reads the cron fields of a Spec: seconds optional, and the
// @ descriptors.
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour |
	cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// next returns the first tick after t, or the zero time when there is none
// within the cron library's search horizon (five years).
func (s *scheduled) next(t time.Time) time.Time {
	if s.when == nil {
		return time.Unix(0, 0).Add((t.Sub(time.Unix(0, 0))/s.every + 1) * s.every).UTC()
	}
	n := s.when.Next(t.In(s.loc))
	if n.IsZero() {
		return n
	}
	return n.UTC()
}

// latest returns the latest tick at or before t, or the zero time when the
// search finds none within a year before t.
func (s *scheduled) latest(t time.Time) time.Time {
	for back := time.Second; back <= 366*24*time.Hour; back *= 2 {
		n := s.next(t.Add(-back))
		if n.IsZero() || n.After(t) {
			continue
		}
		for {
			following := s.next(n)
			if following.IsZero() || following.After(t) {
				return n
			}
			n = following
		}
	}
	return time.Time{}
}

// Schedule declares a schedule named name on r: while Run runs, r enqueues
// s's job at every tick of s.Spec. Every process that declares the same
// name shares the schedule: whether they start together, restart or die
// mid-tick, each tick enqueues exactly one job, because the repository
// stores the schedule's last tick and creates the tick's job in the same
// transaction that moves it forward ([JobRepository.Tick]); no leader is
// elected and nothing that matters lives in a timer. A deploy that
// changes a schedule's spec changes it from its next tick on; a schedule
// that no process declares any more stops (its stored state stays, see
// [Runner.Schedules]).
//
// A process that was stopped or slow past several ticks enqueues one job
// for the latest of them, not one per tick; ticks missed while no process
// ran follow s.CatchUp. A tick's job has the tick as its RunAt.
//
// Declare schedules before Run. A malformed name, spec or kind, a spec that
// never ticks, or a payload that cannot be encoded is [ErrInvalidArgument];
// a name declared twice, or a call after Run started, is [ErrConflict].
func (r *Runner) Schedule(name string, s Schedule) error {
	const op = "schedule"
	if err := checkName(op, "schedule name", name, false); err != nil {
		return err
	}
	if len(s.Spec) > 256 {
		return invalid(op, "spec of schedule %q is %d bytes, over the limit of 256", name, len(s.Spec))
	}
	sc := &scheduled{name: name, s: s, loc: s.Location}
	if sc.loc == nil {
		sc.loc = time.UTC
	}
	if d, ok := strings.CutPrefix(strings.TrimSpace(s.Spec), "@every "); ok {
		every, err := time.ParseDuration(strings.TrimSpace(d))
		if err != nil || every < time.Second || every%time.Second != 0 {
			return invalid(op, "schedule %q: @every needs a duration of whole seconds, at least 1s: %q", name, d)
		}
		sc.every = every
	} else {
		when, err := cronParser.Parse(s.Spec)
		if err != nil {
			return &Error{Code: ErrInvalidArgument, Op: op, Msg: "schedule " + quote(name) + ": " + err.Error(), Err: err}
		}
		sc.when = when
	}
	if sc.next(time.Now()).IsZero() {
		return invalid(op, "schedule %q: spec %q never ticks", name, s.Spec)
	}
	if _, err := r.newJob(s.Kind, s.Payload, s.Options); err != nil {
		return err
	}
	r.hmu.Lock()
	defer r.hmu.Unlock()
	switch {
	case r.started.Load():
		return newError(ErrConflict, op, uuid.Nil, "schedule %q declared after Run started", name)
	case r.schedules[name] != nil:
		return newError(ErrConflict, op, uuid.Nil, "schedule %q declared twice", name)
	}
	if r.schedules == nil {
		r.schedules = map[string]*scheduled{}
	}
	r.schedules[name] = sc
	return nil
}

// Schedules lists the schedules stored in the repository, those declared
// by other processes and those no process declares any more included,
// sorted by name, with their last and next ticks. It is safe for
// concurrent use and needs no running Run.
func (r *Runner) Schedules(ctx context.Context) ([]ScheduleInfo, error) {
	return r.repo.Schedules(ctx)
}

// quote quotes s for an error message.
func quote(s string) string { return `"` + s + `"` }
