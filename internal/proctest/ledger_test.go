package proctest

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
)

// ledgerFile is one process's append-only record of side effects, written
// outside the queue database: O_APPEND|O_SYNC, one line per write(2) so
// that lines never interleave, and every line stored before the handler
// goes on. The files live on tmpfs when there is one (see ledgerDir).
type ledgerFile struct{ f *os.File }

func openLedger(path string) (*ledgerFile, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|syscall.O_SYNC, 0o644)
	if err != nil {
		return nil, err
	}
	return &ledgerFile{f: f}, nil
}

// write appends "event job_id attempt pid [extra…]".
func (l *ledgerFile) write(event string, id uuid.UUID, attempt, pid int, extra ...string) {
	line := fmt.Sprintf("%s %s %d %d", event, id, attempt, pid)
	for _, e := range extra {
		line += " " + e
	}
	l.writeLine(line)
}

func (l *ledgerFile) writeLine(line string) {
	if _, err := l.f.WriteString(line + "\n"); err != nil {
		panic(fmt.Sprintf("ledger: %v", err)) // the test cannot count without it
	}
}

func (l *ledgerFile) Close() error { return l.f.Close() }

// entry is one parsed ledger line.
type entry struct {
	event   string // start, done, ctxdone, fenced, rescued, error
	id      uuid.UUID
	attempt int
	pid     int
	rest    string // ctxdone: the cause's code; fenced: the operation; error: all of it
}

// ledger is the union of all processes' ledger files.
type ledger struct {
	entries []entry
	byJob   map[uuid.UUID][]entry
}

// readLedgers parses every *.ledger file in dir.
func readLedgers(t testing.TB, dir string) *ledger {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.ledger"))
	if err != nil {
		t.Fatal(err)
	}
	l := &ledger{byJob: map[uuid.UUID][]entry{}}
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			e, ok := parseEntry(sc.Text())
			if !ok {
				f.Close()
				t.Fatalf("%s: bad ledger line %q", name, sc.Text())
			}
			l.entries = append(l.entries, e)
			if e.id != uuid.Nil {
				l.byJob[e.id] = append(l.byJob[e.id], e)
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

func parseEntry(line string) (entry, bool) {
	f := strings.Fields(line)
	if len(f) < 3 {
		return entry{}, false
	}
	e := entry{event: f[0]}
	switch e.event {
	case "error":
		e.rest = line
		return e, true
	case "fenced":
		id, err := uuid.Parse(f[1])
		pid, err2 := strconv.Atoi(f[len(f)-1])
		e.id, e.pid, e.rest = id, pid, strings.Join(f[2:len(f)-1], " ")
		return e, err == nil && err2 == nil
	}
	if len(f) < 4 {
		return entry{}, false
	}
	id, err := uuid.Parse(f[1])
	attempt, err2 := strconv.Atoi(f[2])
	pid, err3 := strconv.Atoi(f[3])
	e.id, e.attempt, e.pid = id, attempt, pid
	if len(f) > 4 {
		e.rest = strings.Join(f[4:], " ")
	}
	return e, err == nil && err2 == nil && err3 == nil
}

// at returns the wall clock that ends the entry's line (see wallClock), or
// the zero time when the line carries none.
func (e entry) at() time.Time {
	f := strings.Fields(e.rest)
	if len(f) == 0 {
		return time.Time{}
	}
	ns, err := strconv.ParseInt(f[len(f)-1], 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// count returns how many entries of event the job has.
func (l *ledger) count(id uuid.UUID, event string) int {
	n := 0
	for _, e := range l.byJob[id] {
		if e.event == event {
			n++
		}
	}
	return n
}

// events returns the entries of one kind.
func (l *ledger) events(event string) []entry {
	var out []entry
	for _, e := range l.entries {
		if e.event == event {
			out = append(out, e)
		}
	}
	return out
}

// donesByPid counts "done" lines per process.
func (l *ledger) donesByPid() map[int]int {
	m := map[int]int{}
	for _, e := range l.events("done") {
		m[e.pid]++
	}
	return m
}

func TestLedgerRoundTrip(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	led, err := openLedger(filepath.Join(dir, "1.ledger"))
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.New()
	led.write("start", id, 1, 42)
	led.write("ctxdone", id, 1, 42, "lease_lost")
	led.writeLine(fmt.Sprintf("fenced %s heartbeat 42", id))
	led.writeLine(`error claim unavailable 42 "jobs: claim: busy"`)
	led.write("done", id, 2, 43, "1700000000123456789")
	if err := led.Close(); err != nil {
		t.Fatal(err)
	}
	l := readLedgers(t, dir)
	if l.count(id, "start") != 1 || l.count(id, "done") != 1 || l.count(id, "fenced") != 1 {
		t.Fatalf("counts wrong: %+v", l.byJob[id])
	}
	if e := l.events("ctxdone")[0]; e.rest != "lease_lost" || e.pid != 42 || e.attempt != 1 {
		t.Fatalf("ctxdone parsed as %+v", e)
	}
	if e := l.events("fenced")[0]; e.rest != "heartbeat" || e.pid != 42 {
		t.Fatalf("fenced parsed as %+v", e)
	}
	if at := l.events("done")[0].at(); !at.Equal(time.Unix(0, 1700000000123456789)) {
		t.Fatalf("done at %v", at)
	}
	if !l.events("ctxdone")[0].at().IsZero() {
		t.Fatal("a line without a wall clock has one")
	}
	if len(l.events("error")) != 1 || l.donesByPid()[43] != 1 {
		t.Fatalf("entries: %+v", l.entries)
	}
	if _, ok := parseEntry("start nope 1 2"); ok {
		t.Fatal("a bad job ID parsed")
	}
}

// ledgerDir returns a directory for the ledgers, removed when the test
// ends: on tmpfs (/dev/shm) when there is one. A line that write(2)
// accepted survives the SIGKILL of its process on any file system (it is in
// the page cache), which is all these tests need; on ext4 here each O_SYNC
// line costs about 0.75 ms and the syncs of all processes queue behind one
// journal, so a disk would measure the disk instead of the library.
func ledgerDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("/dev/shm", "jobs-ledger-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}
