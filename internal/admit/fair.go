package admit

import (
	"bytes"
	"cmp"
	"slices"
	"time"
)

// Fair scheduling between concurrency keys: start-time fair queuing. Each
// new job gets a rank when it is created, and claims take pending jobs by
// priority, then rank, then RunAt. Within its queue, a job's rank is
//
//	max(V, L + 1)
//
// where V is the smallest rank of the queue's pending jobs that are due
// (the claims' current position; 0 when none is due) and L the largest
// rank of the pending jobs of the same queue and key (none: no bound). A
// key with many jobs queued thus holds ranks far ahead of V, one per job,
// while a key that arrives later starts at V: claims take the keys in
// turn. Jobs without a key take their turns as one key "". The jobs of
// one key created together get consecutive ranks in claim order
// (priority, RunAt, ID), so that a key's jobs keep their RunAt order.

// NewJob is what Ranks needs of a job being created.
type NewJob struct {
	Queue, Key string
	Priority   int
	RunAt      time.Time
	ID         [16]byte
}

// QueueKey names the jobs of one key in one queue.
type QueueKey struct{ Queue, Key string }

// Head is what the repository read for one queue and key: V and whether
// the queue has a due pending job, L and whether the key has a pending job.
type Head struct {
	V    int64
	HasV bool
	L    int64
	HasL bool
}

// Pairs returns the distinct queue-key pairs of js, in first-seen order.
func Pairs(js []NewJob) []QueueKey {
	seen := map[QueueKey]bool{}
	var out []QueueKey
	for _, j := range js {
		p := QueueKey{j.Queue, j.Key}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// Ranks returns the rank of each job of js, given the heads of their
// queue-key pairs.
func Ranks(js []NewJob, heads map[QueueKey]Head) []int64 {
	groups := map[QueueKey][]int{}
	for i, j := range js {
		p := QueueKey{j.Queue, j.Key}
		groups[p] = append(groups[p], i)
	}
	out := make([]int64, len(js))
	for p, idx := range groups {
		slices.SortFunc(idx, func(a, b int) int {
			x, y := js[a], js[b]
			if c := cmp.Compare(y.Priority, x.Priority); c != 0 {
				return c
			}
			if c := x.RunAt.Compare(y.RunAt); c != 0 {
				return c
			}
			return bytes.Compare(x.ID[:], y.ID[:])
		})
		h := heads[p]
		next := int64(0)
		if h.HasV {
			next = h.V
		}
		if h.HasL {
			next = max(next, h.L+1)
		}
		for k, i := range idx {
			out[i] = next + int64(k)
		}
	}
	return out
}
