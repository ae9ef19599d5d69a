package jobsotel_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestReadmeSnippetIsTheExample: the README's "Tracing and metrics" code is
// part of Example, line for line, so that it compiles and runs.
func TestReadmeSnippetIsTheExample(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	m := regexp.MustCompile("(?s)## Tracing and metrics\n.*?```go\n(.*?)```").FindSubmatch(readme)
	require.NotNil(t, m, "README.md has a Tracing and metrics section with Go code")
	example, err := os.ReadFile("example_test.go")
	require.NoError(t, err)
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(m[1])), "\n") {
		lines = append(lines, "\t"+l) // indented once more in Example's body
	}
	require.Contains(t, string(example), strings.Join(lines, "\n")+"\n",
		"the README's snippet is in Example; copy it over after a change")
}
