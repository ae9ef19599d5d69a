package jobs

import (
	"bytes"
	"container/heap"
	"encoding/json"
	"time"
)

// This file holds the pending-job index of [MemoryRepository]: jobs are
// grouped in buckets by (queue, kind), and each bucket keeps two heaps, one of
// jobs whose RunAt has come (ordered for claiming) and one of jobs scheduled
// for later (ordered by RunAt). A claim promotes the due scheduled jobs and
// then pops the best ready job across the eligible buckets, so it costs
// O(log n) per claimed job instead of a scan of every job.

// memRecord is one stored job with its place in the pending index.
type memRecord struct {
	job     Job
	output  []json.RawMessage // the stored output; item i has number i+1
	rank    int64             // the job's turn among concurrency keys (memory_limit.go)
	bucket  *memBucket        // set while the job is pending
	inReady bool              // which heap of bucket holds it
	heapIdx int               // index in that heap, -1 when in none
	// dependencies (memory_deps.go)
	left       int          // while waiting: the dependencies that have not ended
	dependents []*memRecord // jobs that were waiting for this one when they were created
	// batches (memory_batch.go)
	member *memMember // the job's place in its batch, nil when in none
	notOK  int        // of a batch: its jobs that ended other than succeeded
}

// memBucketKey names the bucket of a queue and kind.
type memBucketKey struct{ queue, kind string }

// memBucket holds the pending jobs of one queue and kind.
type memBucket struct {
	key       memBucketKey
	ready     recHeap        // RunAt has come, in claim order (claimsBefore)
	scheduled recHeap        // RunAt in the future: soonest first
	readyKeys map[string]int // records in ready by concurrency key
}

func newMemBucket(key memBucketKey) *memBucket {
	return &memBucket{
		key:       key,
		ready:     recHeap{less: claimsBefore},
		scheduled: recHeap{less: runsBefore},
		readyKeys: map[string]int{},
	}
}

// claimsBefore is the claim order: higher priority, then lower fair rank,
// then older RunAt, then older ID.
func claimsBefore(a, b *memRecord) bool {
	if a.job.Priority != b.job.Priority {
		return a.job.Priority > b.job.Priority
	}
	if a.rank != b.rank {
		return a.rank < b.rank
	}
	if !a.job.RunAt.Equal(b.job.RunAt) {
		return a.job.RunAt.Before(b.job.RunAt)
	}
	return bytes.Compare(a.job.ID[:], b.job.ID[:]) < 0
}

// runsBefore orders scheduled jobs by RunAt.
func runsBefore(a, b *memRecord) bool { return a.job.RunAt.Before(b.job.RunAt) }

// add puts a pending record in the bucket, ready if its RunAt is not after now.
func (b *memBucket) add(r *memRecord, now time.Time) {
	r.bucket = b
	r.inReady = !r.job.RunAt.After(now)
	if r.inReady {
		heap.Push(&b.ready, r)
		b.readyKeys[r.job.ConcurrencyKey]++
	} else {
		heap.Push(&b.scheduled, r)
	}
}

// remove takes a record out of the bucket.
func (b *memBucket) remove(r *memRecord) {
	if r.heapIdx >= 0 {
		if r.inReady {
			heap.Remove(&b.ready, r.heapIdx)
			b.readyKey(r, -1)
		} else {
			heap.Remove(&b.scheduled, r.heapIdx)
		}
	}
	r.bucket = nil
}

// promote moves the scheduled records whose RunAt has come to ready,
// giving each the fair rank that rank returns (nil: keep its rank).
func (b *memBucket) promote(now time.Time, rank func(*memRecord) int64) {
	for b.scheduled.Len() > 0 && !b.scheduled.recs[0].job.RunAt.After(now) {
		r := heap.Pop(&b.scheduled).(*memRecord)
		if rank != nil {
			r.rank = rank(r)
		}
		r.inReady = true
		heap.Push(&b.ready, r)
		b.readyKeys[r.job.ConcurrencyKey]++
	}
}

// peek returns the best ready record, or nil.
func (b *memBucket) peek() *memRecord {
	if b.ready.Len() == 0 {
		return nil
	}
	return b.ready.recs[0]
}

// popReady removes and returns the best ready record.
func (b *memBucket) popReady() *memRecord {
	r := heap.Pop(&b.ready).(*memRecord)
	r.bucket = nil
	b.readyKey(r, -1)
	return r
}

// readyKey counts r in (d = 1) or out of (d = -1) readyKeys.
func (b *memBucket) readyKey(r *memRecord, d int) {
	k := r.job.ConcurrencyKey
	if b.readyKeys[k] += d; b.readyKeys[k] <= 0 {
		delete(b.readyKeys, k)
	}
}

// putReady puts back a ready record that popReady returned.
func (b *memBucket) putReady(r *memRecord) {
	r.bucket, r.inReady = b, true
	heap.Push(&b.ready, r)
	b.readyKeys[r.job.ConcurrencyKey]++
}

// empty reports whether the bucket holds no record.
func (b *memBucket) empty() bool { return b.ready.Len() == 0 && b.scheduled.Len() == 0 }

// recHeap is a container/heap of records that keeps each record's index.
type recHeap struct {
	recs []*memRecord
	less func(a, b *memRecord) bool
}

func (h *recHeap) Len() int           { return len(h.recs) }
func (h *recHeap) Less(i, j int) bool { return h.less(h.recs[i], h.recs[j]) }
func (h *recHeap) Swap(i, j int) {
	h.recs[i], h.recs[j] = h.recs[j], h.recs[i]
	h.recs[i].heapIdx = i
	h.recs[j].heapIdx = j
}

func (h *recHeap) Push(x any) {
	r := x.(*memRecord)
	r.heapIdx = len(h.recs)
	h.recs = append(h.recs, r)
}

func (h *recHeap) Pop() any {
	n := len(h.recs) - 1
	r := h.recs[n]
	h.recs[n] = nil
	h.recs = h.recs[:n]
	r.heapIdx = -1
	return r
}
