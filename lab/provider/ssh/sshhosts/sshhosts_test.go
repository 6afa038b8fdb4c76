package sshhosts

import (
	"slices"
	"testing"

	"github.com/swarmlab/swarmlab/lab/topology"
)

// The written topology is one the lab accepts, and carries the labels the
// e2e suite must run on it: without them a run through ssh could skip its
// specs and still pass.
func TestTopologyYAMLRequiresItsSpecs(t *testing.T) {
	opts := Options{
		Name:    "t",
		Nodes:   []Node{{Name: "m1", Role: "manager"}, {Name: "w1", Role: "worker"}},
		Require: []string{"failover", "drain"},
	}
	data := topologyYAML(opts, map[string]string{"m1": "10.0.0.2", "w1": "10.0.0.3"}, "/k/id", "/k/known")
	topo, err := topology.Parse([]byte(data), "t.yaml")
	if err != nil {
		t.Fatalf("written topology does not parse: %v\n%s", err, data)
	}
	if !slices.Equal(topo.E2E.Require, opts.Require) {
		t.Fatalf("e2e.require = %v, want %v\n%s", topo.E2E.Require, opts.Require, data)
	}
	if len(topo.Nodes) != 2 {
		t.Fatalf("%d nodes, want 2", len(topo.Nodes))
	}
}
