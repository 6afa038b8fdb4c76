package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/swarmlab/swarmlab/lab/provider"
	"github.com/swarmlab/swarmlab/lab/provider/fake"
	"github.com/swarmlab/swarmlab/lab/swarm"
)

// status --json prints the machines with the fields it always had.
func TestMachinesJSONKeepsItsFields(t *testing.T) {
	c := fake.NewCluster("unit", "r1")
	c.Add("m1", "manager", "10.0.0.10")
	c.Add("w1", "worker", "10.0.0.11").SetState(provider.Paused, true)
	b, err := json.Marshal(machines(c))
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"Name":"m1","Role":"manager","Engine":"fake://m1","Addr":"10.0.0.10","State":"running","Partitioned":false},` +
		`{"Name":"w1","Role":"worker","Engine":"fake://w1","Addr":"10.0.0.11","State":"paused","Partitioned":true}]`
	if string(b) != want {
		t.Errorf("machines JSON\n got %s\nwant %s", b, want)
	}
}

// Each node's engine version: the swarm's, else the one measured at
// bring-up, else "-".
func TestPrintNodes(t *testing.T) {
	c := fake.NewCluster("unit", "r1")
	c.Add("m1", "manager", "10.0.0.10")
	c.Add("w1", "worker", "10.0.0.11").SetState(provider.Paused, true)
	c.Add("w2", "worker", "10.0.0.12")
	st := &swarm.Status{Nodes: []swarm.NodeStatus{
		{Name: "m1", State: "ready", Availability: "active", Leader: true, Engine: "26.1.5+dfsg1"},
		{Name: "w1", State: "down", Availability: "active"},
	}}
	var out bytes.Buffer
	printNodes(&out, c, st, map[string]string{"m1": "20.10.24+dfsg1", "w1": "20.10.24+dfsg1"})
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "NODE  ROLE     MACHINE") || !strings.Contains(lines[0], "  ENGINE     VERSION         LABELS") {
		t.Fatalf("printNodes:\n%s", out.String())
	}
	for i, want := range [][]string{
		{"m1", "manager", "running", "ready (leader)", "10.0.0.10", "fake://m1  26.1.5+dfsg1  "},
		{"w1", "worker", "paused, partitioned", "down", "10.0.0.11", "fake://w1  20.10.24+dfsg1  "},
		{"w2", "worker", "running", "10.0.0.12", "fake://w2  -  "},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i+1], w) {
				t.Errorf("row %d %q lacks %q", i+1, lines[i+1], w)
			}
		}
	}
}
