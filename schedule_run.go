package jobs

import (
	"context"
	"encoding/json"
	"time"
)

// tickState is where one declared schedule stands in the schedule loop.
type tickState struct {
	sc       *scheduled
	payload  json.RawMessage
	due      time.Time // when to act next
	declared bool      // its row is written and its catch-up decided
	fails    int       // consecutive failed writes
}

// scheduleLoop enqueues the ticks of the runner's schedules until ctx
// ends. It first declares each schedule (writes its row, reads its last
// tick, and with CatchUp makes the latest missed tick due), then sleeps
// until the earliest due tick and writes it with [JobRepository.Tick].
// A failed write is retried with backoff; a retry writes the latest tick
// that has passed by then, so an outage costs at most one job per
// schedule, never a burst.
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
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		now := time.Now()
		var earliest time.Time
		for _, st := range states {
			if !st.due.After(now) {
				r.act(ctx, st, now)
			}
			if earliest.IsZero() || st.due.Before(earliest) {
				earliest = st.due
			}
		}
		timer.Reset(max(time.Until(earliest), 0))
	}
}

// act declares st or writes its latest passed tick, and sets st.due.
func (r *Runner) act(ctx context.Context, st *tickState, now time.Time) {
	sc := st.sc
	next := sc.next(now)
	info := ScheduleInfo{Name: sc.name, Spec: sc.s.Spec, Kind: sc.s.Kind, NextTick: next}
	var err error
	if !st.declared {
		var stored ScheduleInfo
		if stored, _, err = r.repo.Tick(ctx, info, nil); err == nil {
			st.declared, st.due = true, next
			if missed := sc.latest(now); sc.s.CatchUp && !stored.LastTick.IsZero() && missed.After(stored.LastTick) {
				st.due = now // the latest missed tick, at once
			}
		}
	} else {
		info.LastTick = sc.latest(now)
		var j *Job
		if j, err = r.newJob(sc.s.Kind, st.payload, sc.s.Options); err == nil {
			j.RunAt = info.LastTick
			var created bool
			if _, created, err = r.repo.Tick(ctx, info, j); err == nil {
				st.due = next
				if created {
					r.enqueued(j)
					r.cfg.logger.Debug("schedule ticked", "schedule", sc.name, "tick", info.LastTick, "job", j.ID)
				}
			}
		}
	}
	if err == nil || ctx.Err() != nil {
		st.fails = 0
		return
	}
	st.fails++
	st.due = now.Add(backoff(st.fails, 100*time.Millisecond, 5*time.Second))
	r.cfg.logger.Warn("schedule tick not written; retrying", "schedule", sc.name, "error", err, "retry_in", st.due.Sub(now))
}
