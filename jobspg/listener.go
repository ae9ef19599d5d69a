package jobspg

import (
	"context"
	"crypto/md5"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/jobsmith/jobs"
	"github.com/uptrace/bun"
)

// Listener defaults.
const (
	// DefaultPingInterval is how long the listener waits for a
	// notification before it checks that its connection is still alive.
	DefaultPingInterval = 15 * time.Second
	// DefaultReconnectMin and DefaultReconnectMax bound the backoff
	// between two attempts to re-establish a lost listening connection.
	DefaultReconnectMin = 100 * time.Millisecond
	DefaultReconnectMax = 5 * time.Second

	// minPingTimeout is the least time a ping may take before the
	// connection is given up.
	minPingTimeout = 5 * time.Second
)

// ListenerOption configures [NewListener].
type ListenerOption func(*listenerConfig)

type listenerConfig struct {
	logger     *slog.Logger
	ping       time.Duration
	backoffMin time.Duration
	backoffMax time.Duration
}

// WithListenerLogger sets the listener's logger (connection losses are
// logged at warn level). The default logs nothing; nil keeps the default.
func WithListenerLogger(l *slog.Logger) ListenerOption {
	return func(c *listenerConfig) {
		if l != nil {
			c.logger = l
		}
	}
}

// WithPingInterval sets how long the listener waits without a notification
// before it pings the server, so that a connection that died silently is
// noticed and replaced. Values <= 0 keep [DefaultPingInterval].
func WithPingInterval(d time.Duration) ListenerOption {
	return func(c *listenerConfig) {
		if d > 0 {
			c.ping = d
		}
	}
}

// WithReconnectBackoff sets the bounds of the jittered exponential backoff
// between reconnection attempts. Invalid bounds (min <= 0 or max < min) keep
// the defaults.
func WithReconnectBackoff(min, max time.Duration) ListenerOption {
	return func(c *listenerConfig) {
		if min > 0 && max >= min {
			c.backoffMin, c.backoffMax = min, max
		}
	}
}

// Listener is the PostgreSQL [jobs.Notifier]: it LISTENs on a dedicated
// connection for the notifications that the jobs table's triggers send when
// jobs are created, requeued, canceled or finished, and hands them to its
// subscribers as [jobs.Event] values. Pass it to [jobs.WithNotifier].
//
// The connection is opened while there is at least one subscriber and
// closed when the last subscriber leaves. It is not one of the database's
// pool and does not count against the pool's size, so a pool of one
// connection is enough for a runner that listens: the listener borrows a
// pooled connection once, only to read its configuration (the URL's
// parameters, search_path included), and connects with that. Hooks given
// to pgx's stdlib.OpenDB as options (such as OptionBeforeConnect) are not
// applied to it. When the connection is lost the listener reconnects with
// backoff and then delivers a [jobs.Event] with Resync set, because
// notifications sent meanwhile are lost. A Listener is safe for concurrent
// use; it starts no goroutine until the first Subscribe and leaves none
// behind after the last unsubscribe.
type Listener struct {
	db  *sql.DB
	cfg listenerConfig

	mu      sync.Mutex // guards subs, next, stop, done and serialises delivery
	subs    map[uint64]func(jobs.Event)
	next    uint64
	stop    context.CancelFunc // of the running loop, nil when none
	done    chan struct{}      // closed when that loop has returned
	running *atomic.Bool       // that loop's liveness, checked under mu

	connected atomic.Bool
	connCfg   atomic.Pointer[pgx.ConnConfig] // of the pool's connections, once read
}

var _ jobs.Notifier = (*Listener)(nil)

// NewListener returns a Listener on db, which must be a PostgreSQL database
// opened through pgx's database/sql adapter (as [Open] and [OpenDB] do) and
// whose search_path leads to the jobs table, like the repository's.
func NewListener(db *bun.DB, opts ...ListenerOption) *Listener {
	c := listenerConfig{
		logger:     slog.New(slog.DiscardHandler),
		ping:       DefaultPingInterval,
		backoffMin: DefaultReconnectMin,
		backoffMax: DefaultReconnectMax,
	}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	return &Listener{db: db.DB, cfg: c, subs: map[uint64]func(jobs.Event){}}
}

// Channel returns the notification channel of the jobs table in the given
// schema, as the table's triggers compute it: "jobs:" and the schema name,
// or its MD5 in hex when the name is longer than 58 bytes.
func Channel(schema string) string {
	if len(schema) > 58 {
		sum := md5.Sum([]byte(schema))
		schema = hex.EncodeToString(sum[:])
	}
	return "jobs:" + schema
}

// Connected reports whether the listener is listening right now; while it
// is not, notifications are being lost and consumers rely on polling.
func (l *Listener) Connected() bool { return l.connected.Load() }

// Subscribe implements [jobs.Notifier]: fn is called for every event until
// the returned func is called. The first subscriber starts the listening
// connection in the background; the returned func of the last one stops it
// and waits for its goroutine to end.
func (l *Listener) Subscribe(fn func(jobs.Event)) (unsubscribe func()) {
	l.mu.Lock()
	id := l.next
	l.next++
	l.subs[id] = fn
	if l.stop == nil {
		ctx, cancel := context.WithCancel(context.Background())
		running := &atomic.Bool{}
		running.Store(true)
		l.stop, l.done, l.running = cancel, make(chan struct{}), running
		go l.run(ctx, l.done, running)
	}
	l.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { l.unsubscribe(id) }) }
}

func (l *Listener) unsubscribe(id uint64) {
	l.mu.Lock()
	delete(l.subs, id)
	var (
		stop context.CancelFunc
		done chan struct{}
	)
	if len(l.subs) == 0 && l.stop != nil {
		stop, done = l.stop, l.done
		l.running.Store(false) // no delivery after this point
		l.stop, l.done, l.running = nil, nil, nil
	}
	l.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
}

// deliver hands ev to every subscriber, unless the loop that found it has
// been stopped.
func (l *Listener) deliver(running *atomic.Bool, ev jobs.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !running.Load() {
		return
	}
	for _, fn := range l.subs {
		fn(ev)
	}
}

// run keeps a listening connection until ctx is done, reconnecting with
// backoff when it is lost.
func (l *Listener) run(ctx context.Context, done chan struct{}, running *atomic.Bool) {
	defer close(done)
	failures := 0
	for {
		start := time.Now()
		err := l.listen(ctx, running)
		l.connected.Store(false)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > l.cfg.backoffMax {
			failures = 0 // it worked for a while: reconnect quickly
		}
		failures++
		wait := l.backoff(failures)
		l.cfg.logger.Warn("jobs listener: connection lost, notifications are missed until it is back",
			"error", err, "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// backoff returns the jittered delay before reconnection attempt n ≥ 1.
func (l *Listener) backoff(n int) time.Duration {
	d := l.cfg.backoffMin
	for i := 1; i < n && d < l.cfg.backoffMax; i++ {
		d *= 2 // stops at the cap, so it never overflows
	}
	d = min(d, l.cfg.backoffMax)
	return d/2 + rand.N(d/2+1)
}

// closeTimeout bounds the goodbye to the server when the listener's
// connection is closed.
const closeTimeout = time.Second

// listen opens a connection of its own, LISTENs on it and delivers
// notifications until the connection fails or ctx is done, then closes it.
func (l *Listener) listen(ctx context.Context, running *atomic.Bool) error {
	cfg, err := l.connConfig(ctx)
	if err != nil {
		return err
	}
	pc, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
		defer cancel()
		_ = pc.Close(cctx)
	}()
	return l.listenOn(ctx, pc, running)
}

// connConfig returns the configuration of the pool's connections. The
// first call reads it from a pooled connection, which it gives back at
// once; later calls reuse it.
func (l *Listener) connConfig(ctx context.Context) (*pgx.ConnConfig, error) {
	if cfg := l.connCfg.Load(); cfg != nil {
		return cfg, nil
	}
	conn, err := l.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var cfg *pgx.ConnConfig
	err = conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("jobspg: listener needs a pgx stdlib connection, got %T", dc)
		}
		cfg = sc.Conn().Config() // a copy
		// pgx set the hook to that connection's buffer; without it, a new
		// connection buffers its own notifications for WaitForNotification.
		cfg.OnNotification = nil
		return nil
	})
	if err != nil {
		return nil, err
	}
	l.connCfg.Store(cfg)
	return cfg, nil
}

func (l *Listener) listenOn(ctx context.Context, pc *pgx.Conn, running *atomic.Bool) error {
	var schema sql.NullString
	if err := pc.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		return err
	}
	if !schema.Valid {
		return errors.New("jobspg: no schema of the search_path exists")
	}
	if _, err := pc.Exec(ctx, "LISTEN "+pgx.Identifier{Channel(schema.String)}.Sanitize()); err != nil {
		return err
	}
	l.connected.Store(true)
	// Whatever happened while no connection listened is unknown.
	l.deliver(running, jobs.Event{Resync: true})
	for {
		wctx, cancel := context.WithTimeout(ctx, l.cfg.ping)
		n, err := pc.WaitForNotification(wctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if wctx.Err() != nil && !pc.IsClosed() {
				// Quiet for a whole ping interval: make sure the
				// connection is still there.
				pctx, cancel := context.WithTimeout(ctx, max(l.cfg.ping, minPingTimeout))
				err = pc.Ping(pctx)
				cancel()
				if err == nil {
					continue
				}
			}
			return err
		}
		l.deliver(running, parsePayload(n.Payload))
	}
}

// parsePayload turns a trigger's payload into an event: "n" is Ready, "c"
// and "s" followed by job IDs are Canceled and Changed, and "c *" or "s *"
// (too many jobs to name) and anything it does not understand are Resync.
func parsePayload(p string) jobs.Event {
	kind, rest, _ := strings.Cut(p, " ")
	if kind == "n" {
		return jobs.Event{Ready: true}
	}
	if kind != "c" && kind != "s" || rest == "*" || rest == "" {
		return jobs.Event{Resync: true}
	}
	fields := strings.Fields(rest)
	ids := make([]uuid.UUID, 0, len(fields))
	for _, f := range fields {
		id, err := uuid.Parse(f)
		if err != nil {
			return jobs.Event{Resync: true}
		}
		ids = append(ids, id)
	}
	if kind == "c" {
		return jobs.Event{Canceled: ids}
	}
	return jobs.Event{Changed: ids}
}
