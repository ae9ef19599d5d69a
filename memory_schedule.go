package jobs

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/jobsmith/jobs/internal/rules"
)

// This file holds the schedules of [MemoryRepository]: their stored state
// by name, written under the repository's lock with the tick's job.

// Tick implements [JobRepository.Tick].
func (m *MemoryRepository) Tick(ctx context.Context, ticks ...ScheduleTick) ([]bool, error) {
	const op = "tick"
	t := rules.Now()
	prepared := make([]*Job, len(ticks))
	names := map[string]bool{}
	for i, tk := range ticks {
		if err := tk.Validate(); err != nil {
			return nil, err
		}
		if names[tk.Name] {
			return nil, invalid(op, "schedule %q is twice in one call", tk.Name)
		}
		names[tk.Name] = true
		if tk.Job != nil {
			prepared[i] = cloneJob(tk.Job)
			if err := prepared[i].Prepare(t, rules.MaxPayloadBytes); err != nil {
				return nil, err
			}
		}
	}
	if err := m.lock(ctx, op); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	if m.schedules == nil {
		m.schedules = map[string]ScheduleInfo{}
	}
	created := make([]bool, len(ticks))
	for i, tk := range ticks {
		s := tk.normal()
		stored, ok := m.schedules[s.Name]
		if !ok {
			stored = ScheduleInfo{Name: s.Name}
		}
		stored.Spec, stored.Kind, stored.NextTick = s.Spec, s.Kind, s.NextTick
		if p := prepared[i]; p != nil && s.LastTick.After(stored.LastTick) {
			stored.LastTick = s.LastTick
			if r := m.unique[p.UniqueKey]; p.UniqueKey != "" && r != nil {
				p = cloneJob(&r.job)
				p.Duplicate = true
			} else {
				m.insert(cloneJob(p), m.ranks([]*Job{p}, t)[0], t)
				created[i] = true
			}
			*tk.Job = *p
		}
		m.schedules[s.Name] = stored
	}
	return created, nil
}

// Schedules implements [JobRepository.Schedules].
func (m *MemoryRepository) Schedules(ctx context.Context) ([]ScheduleInfo, error) {
	if err := m.lock(ctx, "schedules"); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	out := make([]ScheduleInfo, 0, len(m.schedules))
	for _, s := range m.schedules {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b ScheduleInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// normal returns s with its ticks in UTC, to the microsecond, as every
// repository stores them.
func (s ScheduleInfo) normal() ScheduleInfo {
	norm := func(t time.Time) time.Time {
		if t.IsZero() {
			return time.Time{}
		}
		return t.UTC().Truncate(time.Microsecond)
	}
	s.LastTick, s.NextTick = norm(s.LastTick), norm(s.NextTick)
	return s
}
