package aws

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/swarmlab/swarmlab/lab/topology"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the generated templates")

func loadTopology(t *testing.T, name string) *topology.Topology {
	t.Helper()
	topo, _, err := topology.LoadFile(filepath.Join("..", "..", "topologies", name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func plan(t *testing.T, topo string, spec Spec) *Plan {
	t.Helper()
	tp := loadTopology(t, topo)
	if err := spec.Check(); err != nil {
		t.Fatal(err)
	}
	ports, err := PublishedPorts(tp)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPlan(tp, spec, ports)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./lab/aws -run Golden -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("template %s differs from %s (run go test ./lab/aws -run Golden -update if the change is meant):\n%s", name, path, firstDiff(string(want), string(got)))
	}
}

func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return "line " + itoa(i+1) + ":\n  want: " + wl + "\n  got:  " + gl
		}
	}
	return ""
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

var baseSpec = Spec{CIDR: "203.0.113.7/32", KeyName: "lab-key"}

func TestGoldenTemplates(t *testing.T) {
	existing := baseSpec
	existing.VPCID, existing.SubnetID = "vpc-0123456789abcdef0", "subnet-0123456789abcdef0"
	for _, c := range []struct {
		golden, topo string
		spec         Spec
	}{
		{"swarm-3", "swarm-3", baseSpec},
		{"vote-6", "vote-6", baseSpec},
		{"swarm-3-existing-vpc", "swarm-3", existing},
	} {
		t.Run(c.golden, func(t *testing.T) {
			golden(t, c.golden, plan(t, c.topo, c.spec).Template)
		})
	}
}
