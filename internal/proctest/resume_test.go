package proctest

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/jobspg"
	"github.com/stretchr/testify/require"
)

// TestKillCheckpointingWorkers kills worker processes (kill -9) while they
// run jobs that checkpoint after every step and append one output item per
// step, and starts a replacement after each kill. Every job must end
// succeeded with an output that holds each step exactly once, in order, and
// a kill may cost at most the step it interrupted: the ledger counts the
// steps run, and a job runs at most one step more per kill than it has.
// Meanwhile this process, which runs no handler, follows the output of
// three jobs live (Runner.Output: notifications on PostgreSQL, polling on
// SQLite) across the kills: each stream must end when its job does, with
// exactly the job's final output. The long suite does 20 kills per
// backend; the default run 2 on SQLite.
func TestKillCheckpointingWorkers(t *testing.T) {
	t.Parallel()
	kills, backends := 2, []string{"sqlite"}
	if os.Getenv(envLong) != "" {
		kills, backends = 20, backendNames
	}
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			const steps, ms = 60, 20
			c := newCluster(t, backend, childConfig{Workers: 4, Lease: time.Second, Poll: 50 * time.Millisecond}, "")
			c.startN(3)
			ids := c.enqueue(kills*6+6, kindSteps, stepsPayload{Steps: steps, MS: ms}, func(j *jobs.Job) {
				j.MaxAttempts = 100 // a kill costs the attempt of every job of the victim
			})
			follows := followOutputs(t, c, ids[:3])
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
			for k := range kills {
				// Kill a process that is in the middle of a step.
				l := c.waitLedger(20*time.Second, func(l *ledger) bool { return runningStepper(l, c) != 0 })
				victim := runningStepper(l, c)
				time.Sleep(time.Duration(rng.IntN(ms)) * time.Millisecond)
				c.proc(victim).kill(t)
				c.start()
				t.Logf("kill %d: pid %d", k+1, victim)
			}
			c.waitFinished(len(ids), 90*time.Second)

			l := readLedgers(t, c.dir)
			want := make([]int, steps)
			for i := range want {
				want[i] = i
			}
			for _, id := range ids {
				j := c.job(id)
				require.Equal(t, jobs.StatusSucceeded, j.Status, "job %s", id)
				require.Equal(t, want, outputOf(t, c, id), "job %s: each step once, in order", id)
				ran := l.count(id, "step")
				killed := j.Attempt - 1
				require.LessOrEqual(t, ran, steps+killed, "job %s: %d steps run over %d attempts: a kill redid more than one step", id, ran, j.Attempt)
			}
			for i, f := range follows {
				select {
				case got := <-f:
					require.NoError(t, got.err, "follower of job %s", ids[i])
					require.Equal(t, want, got.items, "follower of job %s: the final output, live", ids[i])
				case <-time.After(10 * time.Second):
					t.Fatalf("the follower of job %s did not end with its job", ids[i])
				}
			}
		})
	}
}

// followed is what a live follower of a job's output saw.
type followed struct {
	items []int
	err   error
}

// followOutputs follows the output of each job live from this process,
// through a runner that runs no handler, until the job ends.
func followOutputs(t *testing.T, c *cluster, ids []uuid.UUID) []chan followed {
	t.Helper()
	var opts []jobs.Option
	if c.cfg.Backend == "postgres" {
		opts = append(opts, jobs.WithNotifier(jobspg.NewListener(c.repo.DB())))
	}
	r, err := jobs.NewRunner(c.repo, opts...)
	require.NoError(t, err)
	out := make([]chan followed, len(ids))
	for i, id := range ids {
		out[i] = make(chan followed, 1)
		go func() {
			var f followed
			for it, err := range r.Output(t.Context(), id, 0) {
				if err != nil {
					f.err = err
					break
				}
				var v int
				if f.err = json.Unmarshal(it.Data, &v); f.err != nil {
					break
				}
				f.items = append(f.items, v)
			}
			out[i] <- f
		}()
	}
	return out
}

// runningStepper returns the pid of a live process whose latest ledger line
// for some unfinished job is a step, or 0.
func runningStepper(l *ledger, c *cluster) int {
	live := map[int]bool{}
	for _, p := range c.running() {
		live[p.pid] = true
	}
	for _, es := range l.byJob {
		last := es[len(es)-1]
		if last.event == "step" && live[last.pid] {
			return last.pid
		}
	}
	return 0
}

// outputOf reads a job's whole output as ints.
func outputOf(t testing.TB, c *cluster, id uuid.UUID) []int {
	t.Helper()
	items, err := c.repo.ReadOutput(t.Context(), id, 0, 1000)
	require.NoError(t, err)
	out := make([]int, len(items))
	for i, it := range items {
		require.Equal(t, int64(i+1), it.Seq)
		require.NoError(t, json.Unmarshal(it.Data, &out[i]))
	}
	return out
}
