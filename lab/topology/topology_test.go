package topology

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

const shippedDir = "../../topologies"

func TestShippedTopologies(t *testing.T) {
	tests := []struct {
		file     string
		managers []string
		workers  []string
	}{
		{"swarm-3.yaml", []string{"m1"}, []string{"w1", "w2"}},
		{"vote-6.yaml", []string{"manager"}, []string{"interlock", "frontend01", "frontend02", "worker01", "store"}},
		{"swarm-ha.yaml", []string{"m1", "m2", "m3"}, []string{"w1", "w2"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join(shippedDir, tt.file)
			top, warnings, err := LoadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if len(warnings) > 0 {
				t.Errorf("warnings: %q", warnings)
			}
			if got := nodeNames(top.Managers()); !reflect.DeepEqual(got, tt.managers) {
				t.Errorf("managers = %v, want %v", got, tt.managers)
			}
			if got := nodeNames(top.Workers()); !reflect.DeepEqual(got, tt.workers) {
				t.Errorf("workers = %v, want %v", got, tt.workers)
			}
			if want := tt.file[:len(tt.file)-len(".yaml")]; top.Name != want {
				t.Errorf("name = %q, want the file's base name %q", top.Name, want)
			}
			if top.Swarm.DispatcherHeartbeat.Duration != time.Second {
				t.Errorf("heartbeat = %v, want 1s", top.Swarm.DispatcherHeartbeat)
			}
			if top.Source() != path {
				t.Errorf("Source() = %q, want %q", top.Source(), path)
			}
			for i := range top.Stacks {
				if _, err := os.Stat(top.StackPath(i)); err != nil {
					t.Errorf("stack %d: %v", i, err)
				}
			}
		})
	}
}

// Stacks place services by node.labels.tier, so every vote-6 node needs one.
func TestVote6Tiers(t *testing.T) {
	top, _, err := LoadFile(filepath.Join(shippedDir, "vote-6.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"manager": "manager", "interlock": "interlock", "frontend01": "frontend",
		"frontend02": "frontend", "worker01": "worker", "store": "store",
	}
	for _, n := range top.Nodes {
		if n.Labels["tier"] != want[n.Name] {
			t.Errorf("%s: tier = %q, want %q", n.Name, n.Labels["tier"], want[n.Name])
		}
	}
}

func nodeNames(nodes []Node) []string {
	var names []string
	for _, n := range nodes {
		names = append(names, n.Name)
	}
	return names
}

func TestDefault(t *testing.T) {
	dir := labDir(t)
	path := filepath.Join(dir, "labs", "my-lab.yml")
	mkdirAll(t, filepath.Dir(path))
	writeFile(t, path, `apiVersion: swarmlab.dev/v1alpha1
kind: Topology
nodes:
  - name: m1
    role: manager
  - name: w1
    role: worker
    availability: drain
stacks:
  - file: ../app/invoices/stack.yml
  - file: ../app/billing/stack.yml
    name: payments
`)
	top, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	top.Default()
	if _, err := top.Validate(); err != nil {
		t.Fatal(err)
	}

	checks := []struct {
		what      string
		got, want any
	}{
		{"name (from file name)", top.Name, "my-lab"},
		{"provider", top.Provider.Type, ProviderDocker},
		{"heartbeat", top.Swarm.DispatcherHeartbeat.Duration, time.Second},
		{"nodes[0].availability", top.Nodes[0].Availability, AvailabilityActive},
		{"nodes[1].availability (as written)", top.Nodes[1].Availability, AvailabilityDrain},
		{"stacks[0].name (from directory)", top.Stacks[0].Name, "invoices"},
		{"stacks[1].name (as written)", top.Stacks[1].Name, "payments"},
		{"stacks[0].file (as written)", top.Stacks[0].File, "../app/invoices/stack.yml"},
		{"StackPath(0)", top.StackPath(0), filepath.Join(dir, "app", "invoices", "stack.yml")},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
}

func TestDefaultKeepsExplicitValues(t *testing.T) {
	top, err := Parse([]byte(`apiVersion: swarmlab.dev/v1alpha1
kind: Topology
name: explicit
swarm:
  dispatcherHeartbeat: 250ms
nodes:
  - {name: m1, role: manager, availability: pause}
`), "whatever.yaml")
	if err != nil {
		t.Fatal(err)
	}
	top.Default()
	top.Default() // idempotent
	if top.Name != "explicit" || top.Swarm.DispatcherHeartbeat.Duration != 250*time.Millisecond ||
		top.Nodes[0].Availability != AvailabilityPause {
		t.Errorf("Default overwrote explicit values: %+v", top)
	}
}

// A heartbeat key with no value is treated as absent, not as zero.
func TestDefaultNullHeartbeat(t *testing.T) {
	top, err := Parse([]byte("apiVersion: swarmlab.dev/v1alpha1\nkind: Topology\nswarm:\n  dispatcherHeartbeat:\nnodes: [{name: m1, role: manager}]\n"), "lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	top.Default()
	if _, err := top.Validate(); err != nil {
		t.Fatal(err)
	}
	if top.Swarm.DispatcherHeartbeat.Duration != DefaultHeartbeat {
		t.Errorf("heartbeat = %v, want %v", top.Swarm.DispatcherHeartbeat, DefaultHeartbeat)
	}
}

// Parse is strict but does not validate: it accepts a structurally sound file
// whose values are wrong, so tools can inspect it.
func TestParseDoesNotValidate(t *testing.T) {
	top, err := Parse([]byte("apiVersion: v0\nkind: Cluster\nnodes: [{name: X, role: boss}]\n"), "lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if top.APIVersion != "v0" || top.Nodes[0].Role != "boss" {
		t.Errorf("Parse changed values: %+v", top)
	}
}

// Anchors and aliases are plain YAML, so they work, e.g. to share labels.
func TestAliases(t *testing.T) {
	top, err := Parse([]byte(`apiVersion: swarmlab.dev/v1alpha1
kind: Topology
nodes:
  - name: m1
    role: manager
    labels: &front {tier: frontend, zone: a}
  - name: w1
    role: worker
    labels: *front
`), "lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(top.Nodes[1].Labels, map[string]string{"tier": "frontend", "zone": "a"}) {
		t.Errorf("labels = %v", top.Nodes[1].Labels)
	}
}

func TestLoadMissingFile(t *testing.T) {
	if _, _, err := LoadFile(filepath.Join(t.TempDir(), "nope.yaml")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("err = %v, want a not-exist error", err)
	}
}

func TestDurationYAML(t *testing.T) {
	var v struct{ D Duration }
	if err := yaml.Unmarshal([]byte("d: 1m30s\n"), &v); err != nil {
		t.Fatal(err)
	}
	if v.D.Duration != 90*time.Second {
		t.Errorf("D = %v, want 1m30s", v.D)
	}
	out, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "d: 1m30s\n" {
		t.Errorf("Marshal = %q", out)
	}
	if err := yaml.Unmarshal([]byte("d: soon\n"), &v); err == nil {
		t.Error("Unmarshal of \"soon\" succeeded, want an error")
	}
}
