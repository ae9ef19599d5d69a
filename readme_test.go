package jobs_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestReadmeFirstProgram: the README's first program is a whole program
// whose main body is, character for character, the body of Example, and it
// builds.
func TestReadmeFirstProgram(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	m := regexp.MustCompile("(?s)```go\n(package main\n.*?)```").FindSubmatch(readme)
	require.NotNil(t, m, "README.md has a first program: a go block starting with package main")
	program := m[1]
	require.Contains(t, string(readme), "go get github.com/jobsmith/jobs\n")

	example, err := os.ReadFile("example_test.go")
	require.NoError(t, err)
	want := funcBody(t, "example_test.go", example, "Example")
	require.Equal(t, want, funcBody(t, "README.md", program, "main"),
		"the README's main is Example's body; copy it over after a change")

	if testing.Short() {
		t.Skip("runs the go command")
	}
	main := filepath.Join(t.TempDir(), "main.go")
	require.NoError(t, os.WriteFile(main, program, 0o600))
	out, err := exec.CommandContext(t.Context(), "go", "build", "-o", os.DevNull, main).CombinedOutput()
	require.NoError(t, err, "the README's first program builds: %s", out)
}

// funcBody returns the source between the braces of the function name in src.
func funcBody(t *testing.T, file string, src []byte, name string) string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, src, parser.ParseComments)
	require.NoError(t, err)
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Name.Name == name && fd.Recv == nil {
			return string(src[fset.Position(fd.Body.Lbrace).Offset+1 : fset.Position(fd.Body.Rbrace).Offset])
		}
	}
	t.Fatalf("%s has no func %s", file, name)
	return ""
}

// TestFirstProgramOutput runs Example, the README's first program, and
// checks what it prints: states with a progress that never goes back,
// ending with the finished job and its result. Example has no Output
// comment because Watch may skip states in between. Not parallel: it
// redirects os.Stdout.
func TestFirstProgramOutput(t *testing.T) {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	stdout := os.Stdout
	os.Stdout = w
	printed := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		printed <- string(b)
	}()
	func() {
		defer func() { os.Stdout = stdout }()
		Example()
	}()
	require.NoError(t, w.Close())
	lines := strings.Split(strings.TrimSpace(<-printed), "\n")
	require.GreaterOrEqual(t, len(lines), 2)
	require.Equal(t, []string{"succeeded 100% line 3/3", "words: 9"}, lines[len(lines)-2:])
	state := regexp.MustCompile(`^(pending|running|succeeded) (\d+)% ?(line [1-3]/3)?$`)
	last := -1
	for _, line := range lines[:len(lines)-1] {
		m := state.FindStringSubmatch(line)
		require.NotNil(t, m, "%q", line)
		pct, err := strconv.Atoi(m[2])
		require.NoError(t, err)
		require.GreaterOrEqual(t, pct, last, "progress never goes back: %q", lines)
		last = pct
	}
}
