package topology

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// fuzzFile is the name inputs are parsed as; stack files resolve against
// testdata, which holds app/invoices/stack.yml.
const fuzzFile = "testdata/fuzz.yaml"

var fuzzSeeds = []string{
	"",
	"---\n",
	"a: 1\n---\nb: 2\n",
	"- a\n",
	"apiVersion: swarmlab.dev/v1alpha1\nkind: Topology\nnodes: abc\n",
	"apiVersion: swarmlab.dev/v1alpha1\nkind: Topology\nnodes: [{name: m1, role: manager, labels: [a]}]\n",
	"apiVersion: swarmlab.dev/v1alpha1\nkind: Topology\nnodes: [{name: m1, rol: manager}]\n",
	"apiVersion: swarmlab.dev/v1alpha1\nkind: Topology\nnodes: [{name: m1, role: manager}, {name: m1, role: worker}]\n",
	"apiVersion: swarmlab.dev/v1alpha1\nkind: Topology\nswarm: {dispatcherHeartbeat: 0s, subnet: 10.0.0.1/8}\nnodes: [{name: m1, role: manager}]\n",
	"apiVersion: swarmlab.dev/v1alpha1\nkind: Topology\nprovider: {type: ssh}\nnodes: [{name: m1, role: manager}, {name: m2, role: manager}]\n",
	"apiVersion: swarmlab.dev/v1alpha1\nkind: Topology\nnodes: &n [*n]\n",
	"apiVersion: swarmlab.dev/v1alpha1\nkind: Topology\nnodes:\n- &m {name: m1, role: manager, labels: {\"a.b/c\": x, d: }}\n- *m\n",
	"apiVersion: swarmlab.dev/v1alpha1\nkind: Topology\nswarm: {subnet: 10.99.7.0/24}\nnodes: [{name: m1, role: manager, availability: drain, labels: {n: 1, b: true}}]\nstacks: [{file: app/invoices/stack.yml}, {file: app/invoices/stack.yml, name: other}]\n",
}

func FuzzParse(f *testing.F) {
	shipped, _ := filepath.Glob(filepath.Join(shippedDir, "*.yaml"))
	for _, path := range shipped {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		top, err := Parse(data, fuzzFile)
		if err != nil {
			checkErrorFormat(t, err)
			return
		}
		top.Default()
		warnings, err := top.Validate()
		if err != nil {
			checkErrorFormat(t, err)
			return
		}
		for _, w := range warnings {
			if !strings.HasPrefix(w, fuzzFile+":") {
				t.Errorf("warning %q does not start with the file name", w)
			}
		}
		checkValid(t, top)

		// What validated must survive a trip through YAML unchanged.
		out, err := yaml.Marshal(top)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		again, err := Parse(out, fuzzFile)
		if err != nil {
			t.Fatalf("Parse of marshalled topology: %v\n%s", err, out)
		}
		again.Default()
		if _, err := again.Validate(); err != nil {
			t.Fatalf("Validate of marshalled topology: %v\n%s", err, out)
		}
		if got, want := exported(again), exported(top); !reflect.DeepEqual(got, want) {
			t.Fatalf("round trip changed the topology:\n got %+v\nwant %+v\n%s", got, want, out)
		}
	})
}

func checkErrorFormat(t *testing.T, err error) {
	t.Helper()
	errs, ok := err.(Errors)
	if !ok || len(errs) == 0 {
		t.Fatalf("error is %T (%v), want non-empty Errors", err, err)
	}
	for i, issue := range errs {
		if !strings.HasPrefix(issue.String(), fuzzFile+":") {
			t.Errorf("error %q does not start with the file name", issue)
		}
		if i > 0 && issue.Line < errs[i-1].Line {
			t.Errorf("errors not sorted by line:\n%v", err)
		}
	}
}

// checkValid asserts what callers rely on after a successful Validate.
func checkValid(t *testing.T, top *Topology) {
	t.Helper()
	if len(top.Managers()) == 0 {
		t.Error("valid topology without managers")
	}
	if len(top.Managers())+len(top.Workers()) != len(top.Nodes) {
		t.Errorf("nodes with unknown roles: %+v", top.Nodes)
	}
	names := map[string]bool{}
	for _, n := range top.Nodes {
		if n.Name == "" || names[n.Name] || !slices.Contains(availabilities, n.Availability) {
			t.Errorf("bad node in a valid topology: %+v", n)
		}
		names[n.Name] = true
	}
	if hb := top.Swarm.DispatcherHeartbeat.Duration; hb <= 0 || hb > maxHeartbeat {
		t.Errorf("heartbeat %v out of range", hb)
	}
	if top.Provider.Type != ProviderDocker || top.Name == "" {
		t.Errorf("provider %q, name %q", top.Provider.Type, top.Name)
	}
	for i := range top.Stacks {
		if info, err := os.Stat(top.StackPath(i)); err != nil || !info.Mode().IsRegular() {
			t.Errorf("stack %d: %s is not a regular file", i, top.StackPath(i))
		}
	}
}

// exported copies the fields a caller can see, for comparison.
func exported(t *Topology) Topology {
	return Topology{
		APIVersion: t.APIVersion, Kind: t.Kind, Name: t.Name,
		Provider: t.Provider, Swarm: t.Swarm, Nodes: t.Nodes, Stacks: t.Stacks, E2E: t.E2E,
	}
}
