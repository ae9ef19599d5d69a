package jobs

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"
)

// tickState is where one declared schedule stands in the schedule loop.
type tickState struct {
	sc       *scheduled
	payload  json.RawMessage
	due      time.Time // when to act next
	declared bool      // its row is written and its catch-up decided
}

// scheduleLoop enqueues the ticks of the runner's schedules until ctx
// ends. It first declares the schedules (writes their rows, reads their
// last ticks, and with CatchUp makes the latest missed tick due), then
// sleeps until the earliest due tick and writes every due tick in one
// [JobRepository.Tick]. A failed write is retried with backoff; a retry
// writes the latest tick that has passed by then, so an outage costs at
// most one job per schedule, never a burst.
func (r *Runner) scheduleLoop(ctx context.Context) {
	r.hmu.RLock()
	states := make([]*tickState, 0, len(r.schedules))
	for _, sc := range r.schedules {
		raw, _ := encodePayload(sc.s.Payload) // checked by Schedule
		states = append(states, &tickState{sc: sc, payload: raw})
	}
	r.hmu.RUnlock()
	if len(states) == 0 {
		return
	}
	slices.SortFunc(states, func(a, b *tickState) int { return strings.Compare(a.sc.name, b.sc.name) })
	timer := time.NewTimer(0)
	defer timer.Stop()
	fails := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		now := time.Now()
		var due []*tickState
		for _, st := range states {
			if !st.due.After(now) {
				due = append(due, st)
			}
		}
		err := r.declare(ctx, due, now)
		if err == nil {
			err = r.writeTicks(ctx, due, now)
		}
		switch {
		case err == nil || ctx.Err() != nil:
			fails = 0
		default:
			fails++
			retry := now.Add(backoff(fails, 100*time.Millisecond, 5*time.Second))
			for _, st := range due {
				st.due = retry
			}
			r.cfg.logger.Warn("schedule ticks not written; retrying", "schedules", len(due), "error", err, "retry_in", retry.Sub(now))
		}
		earliest := states[0].due
		for _, st := range states {
			if st.due.Before(earliest) {
				earliest = st.due
			}
		}
		timer.Reset(max(time.Until(earliest), 0))
	}
}

// declare writes the rows of the undeclared schedules among due, reads
// their last ticks and sets their due times: the next tick, or now for
// the latest missed tick of a CatchUp schedule.
func (r *Runner) declare(ctx context.Context, due []*tickState, now time.Time) error {
	var ticks []ScheduleTick
	for _, st := range due {
		if !st.declared {
			ticks = append(ticks, ScheduleTick{ScheduleInfo: st.info(now)})
		}
	}
	if len(ticks) == 0 {
		return nil
	}
	if _, err := r.repo.Tick(ctx, ticks...); err != nil {
		return err
	}
	stored, err := r.repo.Schedules(ctx)
	if err != nil {
		return err
	}
	last := make(map[string]time.Time, len(stored))
	for _, s := range stored {
		last[s.Name] = s.LastTick
	}
	for _, st := range due {
		if st.declared {
			continue
		}
		st.declared, st.due = true, st.sc.next(now)
		l := last[st.sc.name]
		if st.sc.s.CatchUp && !l.IsZero() && st.sc.latest(now).After(l) {
			st.due = now // the latest missed tick, at once
		}
	}
	return nil
}

// writeTicks writes the latest passed tick of each declared schedule in
// due, with its job, and sets their next due times.
func (r *Runner) writeTicks(ctx context.Context, due []*tickState, now time.Time) error {
	var (
		ticks []ScheduleTick
		sts   []*tickState
	)
	for _, st := range due {
		if !st.declared || st.due.After(now) {
			continue // declared just now: its first tick is still ahead
		}
		info := st.info(now)
		info.LastTick = st.sc.latest(now)
		j, err := r.newJob(st.sc.s.Kind, st.payload, st.sc.s.Options)
		if err != nil {
			return err // cannot happen: Schedule checked the same input
		}
		j.RunAt = info.LastTick
		ticks = append(ticks, ScheduleTick{ScheduleInfo: info, Job: j})
		sts = append(sts, st)
	}
	if len(ticks) == 0 {
		return nil
	}
	created, err := r.repo.Tick(ctx, ticks...)
	if err != nil {
		return err
	}
	for i, st := range sts {
		st.due = ticks[i].NextTick
		if created[i] {
			r.enqueued(ticks[i].Job)
			r.cfg.logger.Debug("schedule ticked", "schedule", st.sc.name, "tick", ticks[i].LastTick, "job", ticks[i].Job.ID)
		}
	}
	return nil
}

// info is the state the runner stores for st at now.
func (st *tickState) info(now time.Time) ScheduleInfo {
	sc := st.sc
	return ScheduleInfo{Name: sc.name, Spec: sc.s.Spec, Kind: sc.s.Kind, NextTick: sc.next(now)}
}
