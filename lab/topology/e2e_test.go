package topology

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const e2eHeader = `apiVersion: swarmlab.dev/v1alpha1
kind: Topology
nodes:
  - {name: m1, role: manager}
`

func TestE2ERequire(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lab.yaml")
	writeFile(t, path, e2eHeader+"e2e:\n  require: [failover, rolling-update, vote]\n")
	top, _, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"failover", "rolling-update", "vote"}; !reflect.DeepEqual(top.E2E.Require, want) {
		t.Errorf("E2E.Require = %q, want %q", top.E2E.Require, want)
	}

	// Absent, and written empty: nothing is required.
	for _, extra := range []string{"", "e2e:\n", "e2e:\n  require: []\n", "e2e: {require: }\n"} {
		writeFile(t, path, e2eHeader+extra)
		top, _, err := LoadFile(path)
		if err != nil {
			t.Fatalf("%q: %v", extra, err)
		}
		if len(top.E2E.Require) != 0 {
			t.Errorf("%q: E2E.Require = %q, want none", extra, top.E2E.Require)
		}
	}
}

func TestE2ERequireErrors(t *testing.T) {
	tests := []struct {
		name  string
		extra string // after e2eHeader's 4 lines
		want  []want
	}{
		{"empty label", "e2e:\n  require:\n    - failover\n    - \"\"\n",
			[]want{{8, "e2e.require[1]", "empty label (expected a Ginkgo label"}}},
		{"null label", "e2e:\n  require: [failover, ~]\n",
			[]want{{6, "e2e.require[1]", "empty label"}}},
		{"label filter operator", "e2e:\n  require: [failover, a/b]\n",
			[]want{{6, "e2e.require[1]", `"a/b" is not a Ginkgo label (a label cannot contain any of &|!,()/)`}}},
		{"spaces", "e2e:\n  require: [\" vote\"]\n",
			[]want{{6, "e2e.require[0]", `" vote" has leading or trailing spaces`}}},
		{"duplicate", "e2e:\n  require:\n    - vote\n    - drain\n    - vote\n",
			[]want{{9, "e2e.require[2]", `duplicate label "vote" (first listed at line 7)`}}},
		{"not a list", "e2e:\n  require: failover\n",
			[]want{{6, "e2e.require", `expected a list, found the string "failover"`}}},
		{"not a string", "e2e:\n  require: [[failover]]\n",
			[]want{{6, "e2e.require[0]", "expected a string, found a list"}}},
		{"unknown key", "e2e:\n  requires: [failover]\n",
			[]want{{6, "e2e.requires", `unknown field (did you mean "require"?) (expected one of require)`}}},
		{"e2e not a mapping", "e2e: [failover]\n",
			[]want{{5, "e2e", "expected a mapping, found a list"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "lab.yaml")
			writeFile(t, path, e2eHeader+tt.extra)
			top, _, err := LoadFile(path)
			if err == nil {
				t.Fatalf("LoadFile succeeded (%+v), want errors", top.E2E)
			}
			assertIssues(t, err, path, tt.want)
		})
	}
}

// ginkgoLabel finds the labels the e2e suite's Describes carry.
var ginkgoLabel = regexp.MustCompile(`Label\(((?:"[^"]*",?\s*)+)\)`)

// Every label a shipped topology requires is one the e2e suite uses: a typo
// would otherwise be reported only after a whole e2e run.
func TestShippedTopologiesRequireKnownLabels(t *testing.T) {
	files, err := filepath.Glob("../../e2e/*_test.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no e2e files: %v", err)
	}
	var known []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ginkgoLabel.FindAllStringSubmatch(string(data), -1) {
			for _, l := range strings.Split(m[1], ",") {
				if l = strings.Trim(strings.TrimSpace(l), `"`); l != "" {
					known = append(known, l)
				}
			}
		}
	}
	if !slices.Contains(known, "failover") {
		t.Fatalf("found no Label(\"failover\") in e2e/: %q", known)
	}
	shipped, _ := filepath.Glob(filepath.Join(shippedDir, "*.yaml"))
	for _, path := range shipped {
		top, _, err := LoadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(top.E2E.Require) == 0 {
			t.Errorf("%s requires no e2e spec", path)
		}
		for _, l := range top.E2E.Require {
			if !slices.Contains(known, l) {
				t.Errorf("%s requires label %q, which no e2e Describe carries (known: %q)", path, l, known)
			}
		}
	}
}

func TestE2EMissing(t *testing.T) {
	e := E2E{Require: []string{"failover", "quorum", "ingress", "vote"}}
	specs := []SpecOutcome{
		{Name: "Failover runs a killed worker's tasks", Labels: []string{"failover"}, Ran: true, State: "failed"},
		{Name: "Quorum keeps a leader", Labels: []string{"quorum"}, State: "skipped", Why: "not run on swarm-3:\n needs at least 3 managers"},
		{Name: "Quorum refuses calls", Labels: []string{"quorum"}, State: "skipped", Why: "Spec skipped because Skip() was called in BeforeAll"},
		{Name: "Ingress routing-mesh variant", Labels: []string{"ingress"}, State: "skipped", Why: "no IPVS"},
		{Name: "Ingress edge-proxy variant", Labels: []string{"ingress"}, Ran: true, State: "passed"},
	}
	got := e.Missing(specs)
	var lines []string
	for _, m := range got {
		lines = append(lines, m.String())
	}
	want := []string{
		"quorum: Quorum keeps a leader (skipped: not run on swarm-3: needs at least 3 managers); Quorum refuses calls (skipped: Spec skipped because Skip() was called in BeforeAll)",
		"vote: no spec carries this label",
	}
	if !reflect.DeepEqual(lines, want) {
		t.Errorf("Missing =\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if m := (E2E{}).Missing(specs); m != nil {
		t.Errorf("nothing required, Missing = %v", m)
	}
}

// A required label that failed to decode keeps its place, so the checks of
// the ones after it name their own index and line.
func TestE2ERequireAfterABadItem(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lab.yaml")
	writeFile(t, path, e2eHeader+"e2e:\n  require:\n    - [failover]\n    - vote\n    - vote\n")
	_, _, err := LoadFile(path)
	assertIssues(t, err, path, []want{
		{7, "e2e.require[0]", "expected a string, found a list"},
		{9, "e2e.require[2]", `duplicate label "vote" (first listed at line 8)`},
	})
	if n := strings.Count(err.Error(), "\n") + 1; n != 2 {
		t.Errorf("%d errors, want 2:\n%v", n, err)
	}
}
