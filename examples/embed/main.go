// Command embed is the smallest program that adds jobs to an existing
// net/http service with its own bun database: placing an order inserts the
// order row and enqueues its receipt job in one transaction, so there is
// never an order without a receipt job, nor a receipt for an order that was
// rolled back.
//
// Run it from the repository root:
//
//	go run ./examples/embed
//	curl -s -XPOST 'http://127.0.0.1:8081/orders?item=book'
//	curl -s http://127.0.0.1:8081/orders/1
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/jobsbun"
	"github.com/jobsmith/jobs/jobsqlite"
	"github.com/uptrace/bun"
)

// Order is the application's own table.
type Order struct {
	bun.BaseModel `bun:"table:orders"`

	ID        int64     `bun:"id,pk,autoincrement" json:"id"`
	Item      string    `bun:"item,notnull" json:"item"`
	ReceiptID string    `bun:"receipt_job_id,notnull" json:"receipt_job_id"`
	CreatedAt time.Time `bun:"created_at,notnull" json:"created_at"`
}

// Receipt is the payload of a "send_receipt" job.
type Receipt struct {
	OrderID int64  `json:"order_id"`
	Item    string `json:"item"`
}

// app is the service: its database, the jobs runner on the same database,
// and the HTTP routes.
type app struct {
	db     *bun.DB
	runner *jobs.Runner
}

// newApp opens the database, creates the application's table and the jobs
// schema, and registers the handler.
func newApp(ctx context.Context, path string) (*app, error) {
	db, err := jobsqlite.OpenDB(ctx, path) // the settings the library needs, checked
	if err != nil {
		return nil, err
	}
	if _, err := db.NewCreateTable().Model((*Order)(nil)).IfNotExists().Exec(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("create orders table: %w", err)
	}
	repo, err := jobsbun.New(ctx, db) // creates or migrates the jobs table
	if err != nil {
		db.Close()
		return nil, err
	}
	runner, err := jobs.NewRunner(repo, jobs.WithPollInterval(200*time.Millisecond))
	if err != nil {
		db.Close()
		return nil, err
	}
	jobs.Handle(runner, "send_receipt", func(ctx context.Context, _ *jobs.Job, in Receipt, p jobs.Reporter) (string, error) {
		// A real service would send an e-mail here.
		return fmt.Sprintf("receipt for order %d (%s) sent", in.OrderID, in.Item), nil
	})
	return &app{db: db, runner: runner}, nil
}

// placeOrder inserts the order and enqueues its receipt in one transaction.
func (a *app) placeOrder(ctx context.Context, item string) (*Order, error) {
	order := &Order{Item: item, CreatedAt: time.Now().UTC()}
	err := jobsbun.RunInTx(ctx, a.db, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(order).Exec(ctx); err != nil {
			return err
		}
		job, err := a.runner.EnqueueTx(ctx, tx, "send_receipt", Receipt{OrderID: order.ID, Item: item})
		if err != nil {
			return err
		}
		order.ReceiptID = job.ID.String()
		_, err = tx.NewUpdate().Model(order).Column("receipt_job_id").WherePK().Exec(ctx)
		return err
	})
	return order, err
}

func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /orders", func(w http.ResponseWriter, r *http.Request) {
		item := r.URL.Query().Get("item")
		if item == "" || len(item) > 100 {
			http.Error(w, "item must be 1 to 100 bytes", http.StatusBadRequest)
			return
		}
		order, err := a.placeOrder(r.Context(), item)
		if err != nil {
			log.Printf("place order: %v", err)
			http.Error(w, "could not place the order", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(order)
	})
	mux.HandleFunc("GET /orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil {
			http.Error(w, "bad order id", http.StatusBadRequest)
			return
		}
		var order Order
		if err := a.db.NewSelect().Model(&order).Where("id = ?", id).Scan(r.Context()); err != nil {
			http.Error(w, "no such order", http.StatusNotFound)
			return
		}
		// The job ID is stored with the order, so its status is one call away.
		jobID, err := uuid.Parse(order.ReceiptID)
		if err != nil {
			http.Error(w, "order has no receipt job", http.StatusInternalServerError)
			return
		}
		job, err := a.runner.Get(r.Context(), jobID)
		if err != nil {
			http.Error(w, "receipt job not found", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"order": order, "receipt": job})
	})
	return mux
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8081", "listen address")
	path := flag.String("db", "data/embed.db", "SQLite database file")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("listening on http://%s", ln.Addr())
	if err := serve(ctx, ln, *path); err != nil {
		log.Fatal(err)
	}
}

// serve runs the service on ln until ctx is done, then drains it.
func serve(ctx context.Context, ln net.Listener, path string) error {
	a, err := newApp(ctx, path)
	if err != nil {
		ln.Close()
		return err
	}
	defer a.db.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	srv := &http.Server{Handler: a.routes(), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	runDone := make(chan error, 1)
	go func() { runDone <- a.runner.Run(ctx) }() // returns after a graceful drain
	serveDone := make(chan error, 1)
	go func() { serveDone <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
	case err := <-serveDone: // the listener failed
		cancel()
		<-runDone
		return err
	}
	sctx, cancelShutdown := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelShutdown()
	srv.Shutdown(sctx) // stop accepting, finish the requests in flight
	<-serveDone
	return <-runDone
}
