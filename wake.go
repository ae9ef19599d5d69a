package jobs

import (
	"container/heap"
	"sync"
	"time"
)

// maxWakeTimer is the longest delay for which a local wake-up is scheduled;
// jobs due later are found by polling.
const maxWakeTimer = time.Hour

// wakeSchedule holds the times at which the fetcher must wake for delayed
// jobs that this runner enqueued or retried, and the one timer that fires
// at the earliest of them. Its zero value is ready to use.
type wakeSchedule struct {
	mu      sync.Mutex  // guards the fields below
	times   wakeTimes   // pending wake-up times, earliest first
	timer   *time.Timer // fires r.wakeDue at times[0]; nil until first needed
	stopped bool        // Run has returned: nothing is scheduled any more
}

// wakeAt wakes the fetcher at t: at once when t has passed, by the runner's
// wake timer when t is at most maxWakeTimer away, otherwise not (polling
// finds the job). Nothing is scheduled once Run has returned.
func (r *Runner) wakeAt(t time.Time) {
	d := time.Until(t)
	if d <= 0 {
		r.notify()
		return
	}
	if d > maxWakeTimer {
		return
	}
	w := &r.wakes
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	heap.Push(&w.times, t)
	if w.times[0].Equal(t) {
		r.armWake() // t is the new earliest
	}
}

// wakeDue runs when the wake timer fires: it drops the times that have come,
// wakes the fetcher for them and sets the timer to the next time.
func (r *Runner) wakeDue() {
	w := &r.wakes
	w.mu.Lock()
	now, due := time.Now(), false
	for len(w.times) > 0 && !w.times[0].After(now) {
		heap.Pop(&w.times)
		due = true
	}
	if len(w.times) > 0 && !w.stopped {
		r.armWake()
	}
	w.mu.Unlock()
	if due {
		r.notify()
	}
}

// armWake sets the wake timer to the earliest pending time. r.wakes.mu must
// be held and a time pending.
func (r *Runner) armWake() {
	w := &r.wakes
	d := time.Until(w.times[0])
	if w.timer == nil {
		w.timer = time.AfterFunc(d, r.wakeDue)
		return
	}
	w.timer.Reset(d)
}

// stopWakes stops the wake timer and drops the pending times, for good; Run
// calls it before it returns.
func (r *Runner) stopWakes() {
	w := &r.wakes
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	w.times = nil
	if w.timer != nil {
		w.timer.Stop()
	}
}

// notify wakes the fetcher without blocking.
func (r *Runner) notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// wakeTimes is a min-heap of times for [container/heap].
type wakeTimes []time.Time

func (h wakeTimes) Len() int           { return len(h) }
func (h wakeTimes) Less(i, j int) bool { return h[i].Before(h[j]) }
func (h wakeTimes) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *wakeTimes) Push(x any)        { *h = append(*h, x.(time.Time)) }
func (h *wakeTimes) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
}
