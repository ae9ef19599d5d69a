package logbuf_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/jobsmith/jobs/internal/logbuf"
	"github.com/stretchr/testify/require"
)

func TestBufferKeepsConcurrentWritesWhole(t *testing.T) {
	var seen []string
	b := &logbuf.Buffer{OnWrite: func(s string) { seen = append(seen, s) }}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() { fmt.Fprintf(b, "line %d\n", i) })
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	require.Len(t, lines, 8)
	require.ElementsMatch(t, []string{"line 0", "line 1", "line 2", "line 3", "line 4", "line 5", "line 6", "line 7"}, lines)
	require.Len(t, seen, 8)
	require.Equal(t, b.String(), seen[7])
}
