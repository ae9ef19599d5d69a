package jobs

import (
	"context"
	"slices"
)

// This file holds the queue pauses of [MemoryRepository]: a set of queue
// names that Claim skips (memory_attempt.go).

// PauseQueue implements [JobRepository.PauseQueue].
func (m *MemoryRepository) PauseQueue(ctx context.Context, queue string) error {
	return m.setPaused(ctx, "pause queue", queue, true)
}

// ResumeQueue implements [JobRepository.ResumeQueue].
func (m *MemoryRepository) ResumeQueue(ctx context.Context, queue string) error {
	return m.setPaused(ctx, "resume queue", queue, false)
}

// setPaused validates queue and marks it paused or not.
func (m *MemoryRepository) setPaused(ctx context.Context, op, queue string, paused bool) error {
	if err := checkName(op, "queue", queue, false); err != nil {
		return err
	}
	if err := m.lock(ctx, op); err != nil {
		return err
	}
	defer m.mu.Unlock()
	if paused {
		m.paused[queue] = true
	} else {
		delete(m.paused, queue)
	}
	return nil
}

// pausedQueues returns the paused queues, sorted, never nil. The caller
// holds the mutex.
func (m *MemoryRepository) pausedQueues() []string {
	qs := make([]string, 0, len(m.paused))
	for q := range m.paused {
		qs = append(qs, q)
	}
	slices.Sort(qs)
	return qs
}
