package workflows

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/rhysd/actionlint"
)

// lint runs actionlint on every workflow file (*.yml, *.yaml) in
// root/.github/workflows, with root as the project (so a
// .github/actionlint.yaml there would apply), shellcheck and pyflakes off.
// It returns the files it linted and one "file:line:col: message [rule]"
// line per problem, file relative to root.
func lint(t *testing.T, root string) (files, problems []string) {
	t.Helper()
	dir := filepath.Join(root, ".github", "workflows")
	for _, pat := range []string{"*.yml", "*.yaml"} {
		m, err := filepath.Glob(filepath.Join(dir, pat))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	sort.Strings(files)
	if len(files) == 0 {
		t.Fatalf("no workflow files (*.yml, *.yaml) in %s", dir)
	}
	proj, err := actionlint.NewProject(root)
	if err != nil {
		t.Fatal(err)
	}
	l, err := actionlint.NewLinter(io.Discard, &actionlint.LinterOptions{
		Color:      actionlint.ColorOptionKindNever,
		Shellcheck: "", // off: not installed, and not wanted here
		Pyflakes:   "",
		WorkingDir: root,
	})
	if err != nil {
		t.Fatal(err)
	}
	errs, err := l.LintFiles(files, proj)
	if err != nil {
		t.Fatalf("actionlint: %v", err)
	}
	sort.SliceStable(errs, func(i, j int) bool {
		a, b := errs[i], errs[j]
		if a.Filepath != b.Filepath {
			return a.Filepath < b.Filepath
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	for _, e := range errs {
		p := e.Filepath
		if r, err := filepath.Rel(root, p); err == nil && !strings.HasPrefix(r, "..") {
			p = r
		}
		problems = append(problems, fmt.Sprintf("%s:%d:%d: %s [%s]", p, e.Line, e.Column, e.Message, e.Kind))
	}
	return files, problems
}

// TestWorkflowsLint fails with one line per problem actionlint finds in the
// repository's workflows.
func TestWorkflowsLint(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root not found at %s: %v", root, err)
	}
	files, problems := lint(t, root)
	t.Logf("linted %d workflow file(s) in %s", len(files), filepath.Join(root, ".github", "workflows"))
	for _, p := range problems {
		t.Error(p)
	}
	if len(problems) > 0 {
		t.Logf("%d problem(s) in %d workflow file(s); reproduce with: go tool actionlint -shellcheck= -pyflakes=", len(problems), len(files))
	}
}

// TestWorkflowsLintFindsProblems proves the check can fail: a broken
// workflow (an unknown job key, an undefined matrix property, a job with no
// runs-on) must be reported, with its file, line and column.
func TestWorkflowsLintFindsProblems(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, ".github", "workflows")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	const broken = `name: broken
on: push
jobs:
  test:
    runs-on: ubuntu-24.04
    step:
      - run: echo hi
  other:
    strategy:
      matrix:
        topology: [swarm-3]
    steps:
      - run: echo ${{ matrix.topolgy }}
`
	if err := os.WriteFile(filepath.Join(dir, "broken.yml"), []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	_, problems := lint(t, root)
	if len(problems) == 0 {
		t.Fatal("actionlint found no problem in a broken workflow")
	}
	got := strings.Join(problems, "\n")
	for _, want := range []string{
		`.github/workflows/broken.yml:6:5: unexpected key "step" for "job" section`,
		`.github/workflows/broken.yml:8:3: "runs-on" section is missing in job "other"`,
		`.github/workflows/broken.yml:13:23: property "topolgy" is not defined`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q; got:\n%s", want, got)
		}
	}
}
