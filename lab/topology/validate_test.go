package topology

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// labDir creates a directory holding the stack files the cases refer to.
func labDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, app := range []string{"invoices", "billing"} {
		mkdirAll(t, filepath.Join(dir, "app", app))
		writeFile(t, filepath.Join(dir, "app", app, "stack.yml"), "services: {}\n")
	}
	mkdirAll(t, filepath.Join(dir, "app", "dir", "stack.yml")) // a directory, not a file
	return dir
}

func mkdirAll(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// want is one expected issue: "<file>:<line>: <path>: ...<msg>...".
type want struct {
	line int
	path string
	msg  string
}

func TestLoadFileErrors(t *testing.T) {
	tests := []struct {
		name string
		file string // defaults to lab.yaml
		yaml string
		want []want
	}{
		{
			name: "unsupported apiVersion",
			yaml: `apiVersion: swarmlab.dev/v2
kind: Topology
nodes:
  - {name: m1, role: manager}
`,
			want: []want{{1, "apiVersion", `"swarmlab.dev/v2" is not a supported version (supported: swarmlab.dev/v1alpha1)`}},
		},
		{
			name: "missing apiVersion",
			yaml: `kind: Topology
nodes:
  - {name: m1, role: manager}
`,
			want: []want{{1, "apiVersion", `missing (expected "swarmlab.dev/v1alpha1")`}},
		},
		{
			name: "wrong kind",
			yaml: `apiVersion: swarmlab.dev/v1alpha1
kind: Cluster
nodes:
  - {name: m1, role: manager}
`,
			want: []want{{2, "kind", `expected "Topology", found "Cluster"`}},
		},
		{
			name: "unknown top-level key",
			yaml: `apiVersion: swarmlab.dev/v1alpha1
kind: Topology
node:
  - {name: m1, role: manager}
nodes:
  - {name: m1, role: manager}
`,
			want: []want{{3, "node", `unknown field (did you mean "nodes"?) (expected one of apiVersion, kind, name, provider, swarm, nodes, stacks, e2e)`}},
		},
		{
			name: "unknown node key",
			yaml: `apiVersion: swarmlab.dev/v1alpha1
kind: Topology
nodes:
  - name: m1
    role: manager
  - name: w1
    rol: worker
`,
			want: []want{
				{6, "nodes[1].role", "missing (expected one of manager, worker)"},
				{7, "nodes[1].rol", `unknown field (did you mean "role"?)`},
			},
		},
		{
			name: "duplicate key",
			yaml: `apiVersion: swarmlab.dev/v1alpha1
kind: Topology
nodes:
  - name: m1
    role: manager
    role: worker
`,
			want: []want{{6, "nodes[0].role", "duplicate key (first set at line 5)"}},
		},
		{
			name: "nodes is a string",
			yaml: `apiVersion: swarmlab.dev/v1alpha1
kind: Topology
nodes: "abc"
`,
			want: []want{{3, "nodes", `expected a list, found the string "abc"`}},
		},
		{
			name: "node is a string",
			yaml: `apiVersion: swarmlab.dev/v1alpha1
kind: Topology
nodes:
  - {name: m1, role: manager}
  - w1
`,
			want: []want{{5, "nodes[1]", `expected a mapping, found the string "w1"`}},
		},
		{
			name: "labels as a list",
			yaml: `apiVersion: swarmlab.dev/v1alpha1
kind: Topology
nodes:
  - name: m1
    role: manager
    labels:
      - tier=manager
`,
			want: []want{{7, "nodes[0].labels", "expected a mapping of label keys to values, found a list"}},
		},
		{
			name: "label value is a mapping",
			yaml: `apiVersion: swarmlab.dev/v1alpha1
kind: Topology
nodes:
  - name: m1
    role: manager
    labels:
      tier: {a: b}
`,
			want: []want{{7, "nodes[0].labels.tier", "expected a string label value, found a mapping"}},
		},
		{
			name: "invalid label key",
			yaml: `apiVersion: swarmlab.dev/v1alpha1
kind: Topology
nodes:
  - name: m1
    role: manager
    labels:
      "my tier": manager
`,
			want: []want{{7, `nodes[0].labels["my tier"]`, `"my tier" is not a valid label key`}},
		},
		{
			name: "role is a list",
			yaml: `apiVersion: swarmlab.dev/v1alpha1
kind: Topology
nodes:
  - name: m1
    role: manager
  - name: w1
    role: [worker]
`,
			want: []want{{7, "nodes[1].role", "expected a string, found a list"}},
		},
		{
			name: "missing node name",
			yaml: `apiVersion: swarmlab.dev/v1alpha1
kind: Topology
nodes:
  - name: m1
    role: manager
  - role: worker
`,
			want: []want{{6, "nodes[1].name", "missing (every node needs a name; it becomes the hostname)"}},
		},
		{
			name: "node name is not a DNS label",
			yaml: `apiVersion: swarmlab.dev/v1alpha1
kind: Topology
nodes:
  - name: Manager_1
    role: manager
`,
			want: []want{{4, "nodes[0].name", `"Manager_1" is not a valid node name`}},
		},
		{
			name: "duplicate node name",
			yaml: `apiVersion: swarmlab.dev/v1alpha1
kind: Topology
nodes:
  - name: m1
    role: manager
  - name: w1
    role: worker
  - name: w1
    role: worker
`,
			want: []want{{8, "nodes[2].name", `duplicate node name "w1" (first defined at line 6)`}},
		},
		{
			name: "lab name is not a DNS label",
			yaml: `apiVersion: swarmlab.dev/v1alpha1
kind: Topology
name: My.Lab
nodes:
  - {name: m1, role: manager}
`,
			want: []want{{3, "name", `"My.Lab" is not a valid lab name`}},
		},
		{
			name: "lab name too long",
			yaml: `apiVersion: swarmlab.dev/v1alpha1
kind: Topology
name: ` + strings.Repeat("a", 41) + `
nodes:
  - {name: m1, role: manager}
`,
			want: []want{{3, "name", "expected at most 40 lowercase letters"}},
		},
		{
			name: "lab name derived from a bad file name",
			file: "My_Lab.yaml",
			yaml: `apiVersion: swarmlab.dev/v1alpha1
kind: Topology
nodes:
  - {name: m1, role: manager}
`,
			want: []want{{1, "name", `"My_Lab" (derived from the file name) is not a valid lab name`}},
		},
		{
			name: "no managers",
			yaml: `apiVersion: swarmlab.dev/v1alpha1
kind: Topology
nodes:
  - {name: w1, role: worker}
`,
			want: []want{{3, "nodes", "no node has role manager (a swarm needs at least one)"}},
		},
		{
			name: "unknown role",
			yaml: `apiVersion: swarmlab.dev/v1alpha1
kind: Topology
nodes:
  - name: m1
    role: manager
  - name: w1
    role: boss
`,
			want: []want{{7, "nodes[1].role", `"boss" is not one of manager, worker`}},
		},
		{
			name: "unknown availability",
			yaml: `apiVersion: swarmlab.dev/v1alpha1
kind: Topology
nodes:
  - name: m1
    role: manager
    availability: off
`,
			want: []want{{6, "nodes[0].availability", `"off" is not one of active, pause, drain`}},
		},
		{
			name: "empty nodes list",
			yaml: `apiVersion: swarmlab.dev/v1alpha1
kind: Topology
nodes: []
`,
			want: []want{{3, "nodes", "at least one node is required"}},
		},
		{
			name: "no nodes at all",
			yaml: `apiVersion: swarmlab.dev/v1alpha1
kind: Topology
`,
			want: []want{{1, "nodes", "at least one node is required"}},
		},
		{
			name: "heartbeat is not a duration",
			yaml: `apiVersion: swarmlab.dev/v1alpha1
kind: Topology
swarm:
  dispatcherHeartbeat: fast
nodes:
  - {name: m1, role: manager}
`,
			want: []want{{4, "swarm.dispatcherHeartbeat", `"fast" is not a duration (expected a Go duration such as "1s"`}},
		},
		{
			name: "heartbeat without unit",
			yaml: `apiVersion: swarmlab.dev/v1alpha1
kind: Topology
swarm:
  dispatcherHeartbeat: 5
nodes:
  - {name: m1, role: manager}
`,
			want: []want{{4, "swarm.dispatcherHeartbeat", `"5" is not a duration`}},
		},
		{
			name: "heartbeat zero",
			yaml: `apiVersion: swarmlab.dev/v1alpha1
kind: Topology
swarm:
  dispatcherHeartbeat: 0s
nodes:
  - {name: m1, role: manager}
`,
			want: []want{{4, "swarm.dispatcherHeartbeat", "must be greater than 0, found 0s"}},
		},
		{
			name: "heartbeat too long",
			yaml: `apiVersion: swarmlab.dev/v1alpha1
kind: Topology
swarm:
  dispatcherHeartbeat: 2m
nodes:
  - {name: m1, role: manager}
`,
			want: []want{{4, "swarm.dispatcherHeartbeat", "must be at most 1m, found 2m0s"}},
		},
		{
			name: "subnet not a CIDR",
			yaml: `apiVersion: swarmlab.dev/v1alpha1
kind: Topology
swarm:
  subnet: 10.99.7.0
nodes:
  - {name: m1, role: manager}
`,
			want: []want{{4, "swarm.subnet", `"10.99.7.0" is not a CIDR`}},
		},
		{
			name: "subnet IPv6",
			yaml: `apiVersion: swarmlab.dev/v1alpha1
kind: Topology
swarm:
  subnet: fd00::/64
nodes:
  - {name: m1, role: manager}
`,
			want: []want{{4, "swarm.subnet", `"fd00::/64" is not an IPv4 network`}},
		},
		{
			name: "subnet prefix too short",
			yaml: `apiVersion: swarmlab.dev/v1alpha1
kind: Topology
swarm:
  subnet: 10.0.0.0/8
nodes:
  - {name: m1, role: manager}
`,
			want: []want{{4, "swarm.subnet", `"10.0.0.0/8" has prefix /8 (expected /16 to /28)`}},
		},
		{
			name: "subnet host bits set",
			yaml: `apiVersion: swarmlab.dev/v1alpha1
kind: Topology
swarm:
  subnet: 10.99.7.5/24
nodes:
  - {name: m1, role: manager}
`,
			want: []want{{4, "swarm.subnet", "has host bits set (expected the network address 10.99.7.0/24)"}},
		},
		{
			name: "provider ssh",
			yaml: `apiVersion: swarmlab.dev/v1alpha1
kind: Topology
provider:
  type: ssh
nodes:
  - {name: m1, role: manager}
`,
			want: []want{{6, "nodes[0].ssh", "missing (a node of an ssh topology needs ssh.address"}},
		},
		{
			name: "unknown provider",
			yaml: `apiVersion: swarmlab.dev/v1alpha1
kind: Topology
provider:
  type: podman
nodes:
  - {name: m1, role: manager}
`,
			want: []want{{4, "provider.type", `"podman" is not one of docker, ssh`}},
		},
		{
			name: "stack file does not exist",
			yaml: `apiVersion: swarmlab.dev/v1alpha1
kind: Topology
nodes:
  - {name: m1, role: manager}
stacks:
  - file: app/missing/stack.yml
`,
			want: []want{{6, "stacks[0].file", `"app/missing/stack.yml" does not exist (resolved to `}},
		},
		{
			name: "stack file is a directory",
			yaml: `apiVersion: swarmlab.dev/v1alpha1
kind: Topology
nodes:
  - {name: m1, role: manager}
stacks:
  - file: app/dir/stack.yml
`,
			want: []want{{6, "stacks[0].file", `"app/dir/stack.yml" is a directory`}},
		},
		{
			name: "stack without file",
			yaml: `apiVersion: swarmlab.dev/v1alpha1
kind: Topology
nodes:
  - {name: m1, role: manager}
stacks:
  - name: invoices
`,
			want: []want{{6, "stacks[0].file", "missing"}},
		},
		{
			name: "duplicate stack names",
			yaml: `apiVersion: swarmlab.dev/v1alpha1
kind: Topology
nodes:
  - {name: m1, role: manager}
stacks:
  - file: app/invoices/stack.yml
  - file: app/billing/stack.yml
    name: invoices
`,
			want: []want{{8, "stacks[1].name", `duplicate stack name "invoices" (first used at line 6)`}},
		},
		{
			name: "duplicate defaulted stack names",
			yaml: `apiVersion: swarmlab.dev/v1alpha1
kind: Topology
nodes:
  - {name: m1, role: manager}
stacks:
  - file: app/invoices/stack.yml
  - file: ./app/invoices/../invoices/stack.yml
`,
			want: []want{{7, "stacks[1].name", `duplicate stack name "invoices" (derived from the file's directory name) (first used at line 6)`}},
		},
		{
			name: "stack name is not a DNS label",
			yaml: `apiVersion: swarmlab.dev/v1alpha1
kind: Topology
nodes:
  - {name: m1, role: manager}
stacks:
  - file: app/invoices/stack.yml
    name: Invoices
`,
			want: []want{{7, "stacks[0].name", `"Invoices" is not a valid stack name`}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := tt.file
			if file == "" {
				file = "lab.yaml"
			}
			path := filepath.Join(labDir(t), file)
			writeFile(t, path, tt.yaml)

			top, _, err := LoadFile(path)
			if err == nil {
				t.Fatalf("LoadFile succeeded (%+v), want errors", top)
			}
			assertIssues(t, err, path, tt.want)
		})
	}
}

// assertIssues checks err is an Errors holding exactly the wanted issues.
func assertIssues(t *testing.T, err error, file string, wants []want) {
	t.Helper()
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error is %T, want Errors: %v", err, err)
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(wants) {
		t.Errorf("got %d errors, want %d:\n%v", len(lines), len(wants), err)
	}
	for _, w := range wants {
		prefix := fmt.Sprintf("%s:%d: ", file, w.line)
		if w.path != "" {
			prefix += w.path + ": "
		}
		found := false
		for _, line := range lines {
			if strings.HasPrefix(line, prefix) && strings.Contains(line, w.msg) {
				found = true
			}
		}
		if !found {
			t.Errorf("no error starting %q containing %q in:\n%v", prefix, w.msg, err)
		}
	}
}

func TestParseDocumentErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want want
	}{
		{"empty file", "", want{0, "", "file is empty"}},
		{"only comments", "# nothing here\n", want{0, "", "file is empty"}},
		{"null document", "---\n", want{1, "", "document is empty"}},
		{"two documents", "apiVersion: a\n---\napiVersion: b\n", want{2, "", "found more than one YAML document"}},
		{"syntax error", "apiVersion: a\n  kind: b\n  - c\n", want{2, "", "invalid YAML: "}},
		{"root is a list", "- a\n- b\n", want{1, "", "expected a mapping, found a list"}},
		{"root is a string", "hello\n", want{1, "", `expected a mapping, found the string "hello"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), "topologies/x.yaml")
			if err == nil {
				t.Fatal("Parse succeeded, want an error")
			}
			prefix := "topologies/x.yaml: "
			if tt.want.line > 0 {
				prefix = fmt.Sprintf("topologies/x.yaml:%d: ", tt.want.line)
			}
			if !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), tt.want.msg) {
				t.Errorf("error = %q, want prefix %q containing %q", err, prefix, tt.want.msg)
			}
		})
	}
}

func TestErrorFormat(t *testing.T) {
	data := `apiVersion: swarmlab.dev/v1alpha1
kind: Topology
name: x
nodes:
  - name: m1
    role: manager
  - name: w1
    role: worker
  - name: w2
    labels:
      tier: worker
    role: boss
`
	top, err := Parse([]byte(data), "topologies/x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	top.Default()
	_, err = top.Validate()
	want := `topologies/x.yaml:12: nodes[2].role: "boss" is not one of manager, worker`
	if err == nil || err.Error() != want {
		t.Errorf("error = %v\nwant    %s", err, want)
	}
}

// All problems are reported at once, sorted by line, decoding and validation
// alike.
func TestLoadFileCollectsAllErrors(t *testing.T) {
	path := filepath.Join(labDir(t), "lab.yaml")
	writeFile(t, path, `apiVersion: swarmlab.dev/v1alpha1
kind: Topology
swarm:
  subnet: 10.0.0.0/8
nodes:
  - name: M1
    role: boss
  - name: w1
    role: worker
    colour: blue
stacks:
  - file: app/nope/stack.yml
kind: Topology
`)
	_, _, err := LoadFile(path)
	assertIssues(t, err, path, []want{
		{4, "swarm.subnet", "has prefix /8"},
		{6, "nodes[0].name", `"M1" is not a valid node name`},
		{7, "nodes[0].role", `"boss" is not one of manager, worker`},
		{5, "nodes", "no node has role manager"},
		{10, "nodes[1].colour", "unknown field"},
		{12, "stacks[0].file", "does not exist"},
		{13, "kind", "duplicate key (first set at line 2)"},
	})
	var lines []int
	for _, issue := range err.(Errors) {
		lines = append(lines, issue.Line)
	}
	for i := 1; i < len(lines); i++ {
		if lines[i] < lines[i-1] {
			t.Errorf("errors not sorted by line: %v", lines)
		}
	}
}

// A field that failed to decode is not reported again by validation.
func TestLoadFileNoDuplicateReports(t *testing.T) {
	path := filepath.Join(labDir(t), "lab.yaml")
	writeFile(t, path, `apiVersion: [swarmlab.dev/v1alpha1]
kind: Topology
nodes:
  - {name: m1, role: manager}
`)
	_, _, err := LoadFile(path)
	assertIssues(t, err, path, []want{{1, "apiVersion", "expected a string, found a list"}})
}

func TestEvenManagersWarn(t *testing.T) {
	for _, tt := range []struct {
		managers int
		want     string
	}{
		{2, "2 managers: raft quorum needs a majority (2 of 2), so 2 managers tolerate 0 failure(s), the same as 1 would; use an odd number such as 1 or 3"},
		{4, "4 managers: raft quorum needs a majority (3 of 4), so 4 managers tolerate 1 failure(s), the same as 3 would; use an odd number such as 3 or 5"},
	} {
		t.Run(fmt.Sprint(tt.managers), func(t *testing.T) {
			var b strings.Builder
			b.WriteString("apiVersion: swarmlab.dev/v1alpha1\nkind: Topology\nnodes:\n")
			for i := range tt.managers {
				fmt.Fprintf(&b, "  - {name: m%d, role: manager}\n", i+1)
			}
			b.WriteString("  - {name: w1, role: worker}\n")
			path := filepath.Join(t.TempDir(), "ha.yaml")
			writeFile(t, path, b.String())

			top, warnings, err := LoadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if len(top.Managers()) != tt.managers {
				t.Errorf("Managers() = %d, want %d", len(top.Managers()), tt.managers)
			}
			want := fmt.Sprintf("%s:3: nodes: %s", path, tt.want)
			if len(warnings) != 1 || warnings[0] != want {
				t.Errorf("warnings = %q\nwant [%q]", warnings, want)
			}
		})
	}
}

func TestOddManagersDoNotWarn(t *testing.T) {
	for _, n := range []int{1, 3, 5} {
		top := &Topology{APIVersion: APIVersion, Kind: Kind, Name: "lab"}
		for i := range n {
			top.Nodes = append(top.Nodes, Node{Name: fmt.Sprintf("m%d", i), Role: RoleManager})
		}
		top.Default()
		warnings, err := top.Validate()
		if err != nil || len(warnings) != 0 {
			t.Errorf("%d managers: warnings %q, err %v; want none", n, warnings, err)
		}
	}
}
