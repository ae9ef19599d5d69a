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
func (m *MemoryRepository) Tick(ctx context.Context, s ScheduleInfo, job *Job) (ScheduleInfo, bool, error) {
	const op = "tick"
	if err := s.Validate(); err != nil {
		return ScheduleInfo{}, false, err
	}
	s = s.normal()
	t := rules.Now()
	var p *Job
	if job != nil {
		p = cloneJob(job)
		if err := p.Prepare(t, rules.MaxPayloadBytes); err != nil {
			return ScheduleInfo{}, false, err
		}
	}
	if err := m.lock(ctx, op); err != nil {
		return ScheduleInfo{}, false, err
	}
	defer m.mu.Unlock()
	if m.schedules == nil {
		m.schedules = map[string]ScheduleInfo{}
	}
	stored, ok := m.schedules[s.Name]
	if !ok {
		stored = ScheduleInfo{Name: s.Name}
	}
	stored.Spec, stored.Kind, stored.NextTick = s.Spec, s.Kind, s.NextTick
	created := false
	if p != nil && s.LastTick.After(stored.LastTick) {
		stored.LastTick = s.LastTick
		if r := m.unique[p.UniqueKey]; p.UniqueKey != "" && r != nil {
			p = cloneJob(&r.job)
			p.Duplicate = true
		} else {
			m.insert(cloneJob(p), t)
			created = true
		}
		*job = *p
	}
	m.schedules[s.Name] = stored
	return stored, created, nil
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
