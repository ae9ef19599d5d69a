package jobs

import (
	"sync"
	"time"
)

// Write outages. A database that stops taking writes for a while (another
// connection holds the write lock during a backup, a migration or a vacuum)
// stops every process alike: the owners of running jobs cannot renew their
// leases, and when the lock is released, an owner's renewal and another
// process's rescue of the lease that expired meanwhile race for the first
// write. A rescue that won would take a live job from its owner: a result
// the handler already returned would be refused and the job run again.
//
// So the rescuer waits out outages. A live owner's lease can only expire
// when its renewals were held up for most of a lease (they run every third
// of a lease), and an outage that long also holds up this runner's own
// writes. The runner times its writes; while one of them has been waiting
// longer than outageAfter, and for a whole lease after the last such write
// ended, it rescues nothing. Owners then have a lease's time to renew
// before any rescuer looks, and a dead owner's jobs are rescued one lease
// later than they would be without the outage.
type writeWatch struct {
	slow time.Duration // a write that takes longer met an outage
	hold time.Duration // how long rescues wait after an outage

	mu       sync.Mutex // guards the fields below
	inflight map[uint64]time.Time
	next     uint64
	lastSlow time.Time // when the last write that met an outage ended
}

// outageAfter is the fraction of the lease a write must wait for the runner
// to take it as a sign of a write outage.
const outageAfter = 8

func newWriteWatch(lease time.Duration) *writeWatch {
	return &writeWatch{slow: lease / outageAfter, hold: lease, inflight: map[uint64]time.Time{}}
}

// begin records the start of a write and returns the func that records its
// end.
func (w *writeWatch) begin() (end func()) {
	start := time.Now()
	w.mu.Lock()
	id := w.next
	w.next++
	w.inflight[id] = start
	w.mu.Unlock()
	return func() {
		now := time.Now()
		w.mu.Lock()
		defer w.mu.Unlock()
		delete(w.inflight, id)
		if now.Sub(start) > w.slow && now.After(w.lastSlow) {
			w.lastSlow = now
		}
	}
}

// held reports whether rescues must wait at now, and since when the
// database has not taken writes as it should.
func (w *writeWatch) held(now time.Time) (bool, time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.inflight {
		if now.Sub(s) > w.slow {
			return true, s
		}
	}
	return now.Before(w.lastSlow.Add(w.hold)), w.lastSlow
}
