package jobs

import "time"

// The queries and answers of [JobRepository]'s List, Claim and Stats.

// ListQuery selects jobs for [JobRepository.List], and for the admin
// operations that act on many jobs ([JobRepository.RetryMany], CancelMany
// and DeleteMany: there Limit is the batch size, and Cursor, the ID of the
// last job of the previous batch, continues after it). Zero fields do not
// filter.
type ListQuery struct {
	Statuses []Status // any of these statuses
	Kind     string
	Queue    string
	// CreatedBefore keeps the jobs created before this time; the zero
	// time keeps all. It must lie in the years 1 to 9999 (UTC).
	CreatedBefore time.Time
	// Limit is the page size: 0 means 50, at most 1000.
	Limit int
	// Cursor is Page.Next of the previous page, or "" for the first page.
	Cursor string
}

// Page is one page of [JobRepository.List].
type Page struct {
	Jobs []*Job `json:"jobs"`
	// Next is the cursor of the following page, or "" on the last page.
	Next string `json:"next,omitempty"`
}

// ClaimQuery says which jobs a worker can take, for [JobRepository.Claim].
type ClaimQuery struct {
	Owner         string        // required: identifies the claiming runner
	Queues        []string      // claim only from these queues; empty: any
	Kinds         []string      // claim only these kinds; empty: any
	Limit         int           // at most this many jobs, 1 to 1000
	LeaseDuration time.Duration // how long the lease lasts without renewal; > 0

	// KindLimits and QueueLimits bound, by kind and by queue, the jobs
	// that run and start across everything sharing the storage; see
	// [JobRepository.Claim]. Names must be valid kind and queue names and
	// each Limit valid (see [Limit]).
	KindLimits  map[string]Limit
	QueueLimits map[string]Limit

	// NextStart, when not nil, is set by Claim to the earliest time at
	// which a rate limit (Rate or KeyRate) that is reached lets a job
	// start again, or to the zero time when no rate of q is reached. A
	// runner held back by a rate sleeps until then instead of polling.
	NextStart *time.Time
}

// Stats counts jobs.
type Stats struct {
	Total    int                       `json:"total"`
	ByStatus map[Status]int            `json:"by_status"`
	ByKind   map[string]map[Status]int `json:"by_kind"`
	ByQueue  map[string]map[Status]int `json:"by_queue"`
	// Paused lists the paused queues in ascending order, those without
	// jobs too (see [JobRepository.PauseQueue]); an empty slice, not nil,
	// when none is.
	Paused []string `json:"paused"`
	// OldestPending is, per queue, the RunAt of its oldest pending job
	// that is due (RunAt not after the call): time.Since of it is how long
	// the queue keeps work waiting, its latency. Queues without a due
	// pending job are absent; an empty map, not nil, when none has one.
	OldestPending map[string]time.Time `json:"oldest_pending"`
}

// Add counts n jobs with the given queue, kind and status.
func (s *Stats) Add(queue, kind string, st Status, n int) {
	if s.ByStatus == nil {
		s.ByStatus = map[Status]int{}
		s.ByKind = map[string]map[Status]int{}
		s.ByQueue = map[string]map[Status]int{}
	}
	s.Total += n
	s.ByStatus[st] += n
	if s.ByKind[kind] == nil {
		s.ByKind[kind] = map[Status]int{}
	}
	s.ByKind[kind][st] += n
	if s.ByQueue[queue] == nil {
		s.ByQueue[queue] = map[Status]int{}
	}
	s.ByQueue[queue][st] += n
}
