package jobs

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs/internal/admit"
	"github.com/jobsmith/jobs/internal/rules"
)

// MemoryRepository is a [JobRepository] that keeps jobs in memory: for tests,
// and for programs that need no durability (everything is lost when the
// process exits). It passes the same conformance suite (package jobstest) as
// the SQL repositories and refuses exactly the same input.
//
// A MemoryRepository is safe for concurrent use. Its methods never block
// except on its internal mutex. Claim costs O(log n) per claimed job however
// many jobs wait; List costs O(page size) plus the jobs its filters skip.
// The end of a job costs O(1) more when no job waits for it (see
// [Job.DependsOn]), and O(1) per job that does. A job of a batch (see
// [Job.Batch]) adds O(1) to each of its progress updates, which keep the
// batch's fraction; canceling a batch costs O(its jobs).
// It has no transactions: CreateTx returns [ErrInvalidArgument].
type MemoryRepository struct {
	mu      sync.Mutex
	closed  bool
	jobs    map[uuid.UUID]*memRecord
	order   []*memRecord                // every job, by ID ascending (oldest first)
	unique  map[string]*memRecord       // by UniqueKey
	buckets map[memBucketKey]*memBucket // pending jobs by queue and kind
	running map[uuid.UUID]*memRecord
	paused  map[string]bool            // queues paused; see memory_pause.go
	starts  map[admit.Scope][]memStart // start logs of rate limits; see memory_limit.go
	keys    map[admit.QueueKey]*memKey // pending jobs by queue and key; see memory_limit.go
	// schedules by name; see memory_schedule.go
	schedules map[string]ScheduleInfo
}

var _ JobRepository = (*MemoryRepository)(nil)

// NewMemoryRepository returns an empty in-memory repository. Payloads and
// results are limited to 1 MiB each, the default of the SQL repositories.
func NewMemoryRepository() *MemoryRepository {
	return &MemoryRepository{
		jobs:    map[uuid.UUID]*memRecord{},
		unique:  map[string]*memRecord{},
		buckets: map[memBucketKey]*memBucket{},
		running: map[uuid.UUID]*memRecord{},
		paused:  map[string]bool{},
		starts:  map[admit.Scope][]memStart{},
		keys:    map[admit.QueueKey]*memKey{},
	}
}

// closedError is the error of a call after Close.
func closedError(op string) *Error {
	return newError(ErrClosed, op, uuid.Nil, "repository is closed")
}

// lock takes the mutex and checks ctx and Close. On a nil error the caller
// must unlock.
func (m *MemoryRepository) lock(ctx context.Context, op string) error {
	if ctx.Err() != nil {
		return ctxError(ctx, op)
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return closedError(op)
	}
	return nil
}

// cloneJob returns a deep copy of j.
func cloneJob(j *Job) *Job {
	c := *j
	c.Payload = bytes.Clone(j.Payload)
	c.Result = bytes.Clone(j.Result)
	c.Errors = slices.Clone(j.Errors)
	c.DependsOn = slices.Clone(j.DependsOn)
	c.Checkpoint = bytes.Clone(j.Checkpoint)
	c.Metadata = cloneMetadata(j.Metadata)
	return &c
}

// Create implements [JobRepository.Create]. On error the jobs are unchanged
// and nothing is stored: the write, under the repository's lock, cannot
// fail once started, so it never returns [ErrOutcomeUnknown].
func (m *MemoryRepository) Create(ctx context.Context, jobs ...*Job) error {
	prepared := make([]*Job, len(jobs))
	t := rules.Now()
	batches := false // some job is a batch
	for i, j := range jobs {
		if j == nil {
			return invalid("create", "job %d is nil", i)
		}
		p := cloneJob(j)
		if err := p.Prepare(t, rules.MaxPayloadBytes); err != nil {
			return err
		}
		p.DependsOn, p.After = nil, nil // resolved below
		if p.Batch {
			p.RunAnyway = true // its jobs' outcomes never cancel it
			batches = true
		}
		prepared[i] = p
	}
	deps, err := rules.Deps(jobs, jobDeps, jobID)
	if err != nil {
		return invalid("create", "%s", err)
	}
	if batches {
		for i, p := range prepared {
			if p.Batch && (deps == nil || len(deps[i]) == 0) {
				return invalid("create", "job %d is a batch without jobs: a batch needs at least one dependency", i)
			}
		}
	}
	if err := m.lock(ctx, "create"); err != nil {
		return err
	}
	defer m.mu.Unlock()
	batch := map[string]*Job{} // unique keys created by this call
	var firsts map[int]*Job    // the jobs of this call that later ones duplicate
	for i, p := range prepared {
		if p.UniqueKey == "" {
			continue
		}
		if r := m.unique[p.UniqueKey]; r != nil {
			prepared[i] = cloneJob(&r.job)
			prepared[i].Duplicate = true
		} else if first := batch[p.UniqueKey]; first != nil {
			prepared[i] = &Job{ID: first.ID, Duplicate: true} // filled in below
			if firsts == nil {
				firsts = map[int]*Job{}
			}
			firsts[i] = first
		} else {
			batch[p.UniqueKey] = p
		}
	}
	dependsOn, err := m.memDeps(prepared, deps)
	if err != nil {
		return err
	}
	if batches {
		if err := m.batchMembers(prepared, dependsOn); err != nil {
			return err
		}
	}
	var left []int // by job, when some job has dependencies
	if dependsOn != nil {
		left = m.depStarts(prepared, dependsOn, t)
	}
	var fresh []*Job // new pending jobs
	for _, p := range prepared {
		if !p.Duplicate && p.Status == StatusPending {
			fresh = append(fresh, p)
		}
	}
	ranks := m.ranks(fresh, t)
	k := 0 // fresh[k] is the next pending job
	for i, p := range prepared {
		if p.Duplicate {
			continue
		}
		var rank int64
		if k < len(fresh) && fresh[k] == p {
			rank = ranks[k]
			k++
		}
		r := m.insert(cloneJob(p), rank, t)
		if p.Status == StatusWaiting {
			m.wait(r, left[i])
		}
		if p.Batch {
			m.join(r, p) // its jobs come earlier in the call, or are stored
		}
	}
	for i, first := range firsts {
		prepared[i] = cloneJob(first) // as created, with its status
		prepared[i].Duplicate = true
	}
	for i, p := range prepared {
		*jobs[i] = *p
	}
	return nil
}

// insert stores a new job and returns its record: a pending job goes into
// the pending index. The caller holds the mutex.
func (m *MemoryRepository) insert(j *Job, rank int64, t time.Time) *memRecord {
	r := &memRecord{job: *j, rank: rank, heapIdx: -1}
	r.job.After = nil // never stored
	m.jobs[j.ID] = r
	if j.UniqueKey != "" {
		m.unique[j.UniqueKey] = r
	}
	if n := len(m.order); n == 0 || bytes.Compare(m.order[n-1].job.ID[:], j.ID[:]) < 0 {
		m.order = append(m.order, r)
	} else {
		i, _ := slices.BinarySearchFunc(m.order, j.ID, func(r *memRecord, id uuid.UUID) int {
			return bytes.Compare(r.job.ID[:], id[:])
		})
		m.order = slices.Insert(m.order, i, r)
	}
	if j.Status == StatusPending {
		m.enqueue(r, t)
	}
	return r
}

// enqueue puts a pending record in the pending index. The caller holds the mutex.
func (m *MemoryRepository) enqueue(r *memRecord, t time.Time) {
	key := memBucketKey{r.job.Queue, r.job.Kind}
	b := m.buckets[key]
	if b == nil {
		b = newMemBucket(key)
		m.buckets[key] = b
	}
	b.add(r, t)
	m.pendingKey(r, 1)
}

// dequeue takes a pending record out of the pending index. The caller holds
// the mutex.
func (m *MemoryRepository) dequeue(r *memRecord) {
	b := r.bucket
	if b == nil {
		return
	}
	m.pendingKey(r, -1)
	b.remove(r)
	if b.empty() {
		delete(m.buckets, b.key)
	}
}

// CreateTx implements [JobRepository.CreateTx]: a MemoryRepository has no
// transactions to join, so it always returns [ErrInvalidArgument] (or
// [ErrClosed] after Close).
func (m *MemoryRepository) CreateTx(ctx context.Context, tx any, jobs ...*Job) error {
	if err := m.lock(ctx, "create"); err != nil {
		return err
	}
	m.mu.Unlock()
	return invalid("create", "the memory repository cannot join a bun transaction")
}

// Get implements [JobRepository.Get].
func (m *MemoryRepository) Get(ctx context.Context, id uuid.UUID) (*Job, error) {
	if err := m.lock(ctx, "get"); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	r := m.jobs[id]
	if r == nil {
		return nil, notFound("get", id)
	}
	return cloneJob(&r.job), nil
}

// List implements [JobRepository.List].
func (m *MemoryRepository) List(ctx context.Context, q ListQuery) (*Page, error) {
	limit, after, err := q.Page()
	if err != nil {
		return nil, err
	}
	if err := m.lock(ctx, "list"); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	end := len(m.order) // index after the first candidate, walking down
	if after != uuid.Nil {
		end, _ = slices.BinarySearchFunc(m.order, after, func(r *memRecord, id uuid.UUID) int {
			return bytes.Compare(r.job.ID[:], id[:])
		})
	}
	page := &Page{Jobs: []*Job{}}
	for i := end - 1; i >= 0; i-- {
		j := &m.order[i].job
		if !listMatches(q, j) {
			continue
		}
		if len(page.Jobs) == limit {
			page.Next = page.Jobs[limit-1].ID.String()
			break
		}
		page.Jobs = append(page.Jobs, cloneJob(j))
	}
	return page, nil
}

// listMatches reports whether j passes the filters of q.
func listMatches(q ListQuery, j *Job) bool {
	return (len(q.Statuses) == 0 || slices.Contains(q.Statuses, j.Status)) &&
		(q.Kind == "" || q.Kind == j.Kind) &&
		(q.Queue == "" || q.Queue == j.Queue) &&
		(q.CreatedBefore.IsZero() || j.CreatedAt.Before(q.CreatedBefore))
}

// Stats implements [JobRepository.Stats]. The maps are never nil.
func (m *MemoryRepository) Stats(ctx context.Context) (*Stats, error) {
	if err := m.lock(ctx, "stats"); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	s := &Stats{
		ByStatus: map[Status]int{},
		ByKind:   map[string]map[Status]int{},
		ByQueue:  map[string]map[Status]int{},
	}
	s.OldestPending = map[string]time.Time{}
	now := rules.Now()
	for _, r := range m.order {
		j := &r.job
		s.Add(j.Queue, j.Kind, j.Status, 1)
		if j.Status == StatusPending && !j.RunAt.After(now) {
			if t, ok := s.OldestPending[j.Queue]; !ok || j.RunAt.Before(t) {
				s.OldestPending[j.Queue] = j.RunAt
			}
		}
	}
	s.Paused = m.pausedQueues()
	return s, nil
}

// Prune implements [JobRepository.Prune].
func (m *MemoryRepository) Prune(ctx context.Context, finishedBefore time.Time) (int, error) {
	if err := m.lock(ctx, "prune"); err != nil {
		return 0, err
	}
	defer m.mu.Unlock()
	n := 0
	m.order = slices.DeleteFunc(m.order, func(r *memRecord) bool {
		if !r.job.Status.Terminal() || !r.job.FinishedAt.Before(finishedBefore) {
			return false
		}
		delete(m.jobs, r.job.ID)
		if r.job.UniqueKey != "" {
			delete(m.unique, r.job.UniqueKey)
		}
		n++
		return true
	})
	return n, nil
}

// ReadOutput implements [JobRepository.ReadOutput].
func (m *MemoryRepository) ReadOutput(ctx context.Context, id uuid.UUID, after int64, limit int) ([]OutputItem, error) {
	const op = "read output"
	if msg := rules.OutputRead(after, limit); msg != "" {
		return nil, invalid(op, "%s", msg)
	}
	if err := m.lock(ctx, op); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	r, ok := m.jobs[id]
	if !ok {
		return nil, notFound(op, id)
	}
	items := []OutputItem{}
	// i counts from after, not after+1, which overflows for after = MaxInt64.
	for i := after; i < int64(len(r.output)) && len(items) < limit; i++ {
		items = append(items, OutputItem{Seq: i + 1, Data: bytes.Clone(r.output[i])})
	}
	return items, nil
}

// Close implements [JobRepository.Close]: later calls return [ErrClosed]
// and the jobs are dropped. It is idempotent and always returns nil.
func (m *MemoryRepository) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.jobs, m.order, m.unique, m.buckets, m.running, m.paused = nil, nil, nil, nil, nil, nil
	return nil
}
