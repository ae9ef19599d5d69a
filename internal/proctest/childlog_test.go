package proctest

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// logLine is one line of a worker process's stderr, where its runner logs
// warnings and errors with slog's text handler.
type logLine struct {
	at    time.Time // zero when the line is not a slog record
	level string    // WARN, ERROR
	msg   string
	job   uuid.UUID // the job_id attribute, if any
	text  string    // the line without its time
}

var (
	slogRecord = regexp.MustCompile(`^time=(\S+) (level=(\S+) msg=("(?:[^"\\]|\\.)*"|\S+).*)$`)
	slogJobID  = regexp.MustCompile(` job_id=(\S+)`)
)

// childLog reads the stderr of every worker process of a cluster (the
// *.stderr files beside the ledgers in dir).
func childLog(t testing.TB, dir string) []logLine {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.stderr"))
	require.NoError(t, err)
	var lines []logLine
	for _, name := range files {
		f, err := os.Open(name)
		require.NoError(t, err)
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			lines = append(lines, parseLogLine(sc.Text()))
		}
		f.Close()
		require.NoError(t, sc.Err())
	}
	return lines
}

func parseLogLine(s string) logLine {
	m := slogRecord.FindStringSubmatch(s)
	if m == nil {
		return logLine{text: s}
	}
	l := logLine{level: m[3], msg: m[4], text: m[2]}
	l.at, _ = time.Parse(time.RFC3339Nano, m[1])
	if msg, err := strconv.Unquote(m[4]); err == nil {
		l.msg = msg
	}
	if j := slogJobID.FindStringSubmatch(m[2]); j != nil {
		l.job, _ = uuid.Parse(j[1])
	}
	return l
}

// loggedJobs returns the jobs named in the log lines with message msg.
func loggedJobs(lines []logLine, msg string) map[uuid.UUID]bool {
	m := map[uuid.UUID]bool{}
	for _, l := range lines {
		if l.msg == msg && l.job != uuid.Nil {
			m[l.job] = true
		}
	}
	return m
}

// messageCounts counts the log lines by level and message ("WARN claim
// jobs"); lines that are not slog records count under their own text.
func messageCounts(lines []logLine) map[string]int {
	m := map[string]int{}
	for _, l := range lines {
		if l.msg == "" {
			m["other: "+tail(l.text, 80)]++
			continue
		}
		m[l.level+" "+strconv.Quote(l.msg)]++
	}
	return m
}

func TestParseLogLine(t *testing.T) {
	t.Parallel()
	id := uuid.New()
	l := parseLogLine(`time=2026-12-06T23:42:38.852Z level=ERROR msg="lease not renewed in time" job_id=` + id.String() + ` kind=work`)
	require.Equal(t, "ERROR", l.level)
	require.Equal(t, "lease not renewed in time", l.msg)
	require.Equal(t, id, l.job)
	require.Equal(t, time.Date(2026, 12, 6, 23, 42, 38, 852e6, time.UTC), l.at)
	require.Equal(t, `level=ERROR msg="lease not renewed in time" job_id=`+id.String()+` kind=work`, l.text)
	l = parseLogLine(`time=2026-12-06T23:42:38.852Z level=WARN msg=stop`)
	require.Equal(t, "stop", l.msg)
	require.Equal(t, uuid.Nil, l.job)
	l = parseLogLine("child: parent gone, exiting")
	require.True(t, l.at.IsZero())
	require.Equal(t, map[string]int{"other: child: parent gone, exiting": 1}, messageCounts([]logLine{l}))
	require.Equal(t, map[uuid.UUID]bool{id: true}, loggedJobs([]logLine{
		parseLogLine(`time=2026-12-06T23:42:38.852Z level=WARN msg="job lease lost; outcome not stored" job_id=` + id.String()),
	}, "job lease lost; outcome not stored"))
}
