package lab

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/swarmlab/swarmlab/lab/provider"
	"github.com/swarmlab/swarmlab/lab/provider/fake"
)

// List describes every lab: its provider and node count from the record
// and its nodes, the engine version of its first running node that
// answers, and when it was made; a lab it cannot open is listed with why.
func TestListDescribesEveryLab(t *testing.T) {
	f := newFakeUp(t)
	before := time.Now().Add(-time.Second)
	if _, err := f.up(t, context.Background(), fakeTopology(t), Options{Name: "one", KeepOnFailure: true}); err == nil {
		t.Fatal("Up on fake nodes succeeded")
	}
	// Its first node is stopped; the second one's engine answers.
	c := f.p.Lab("one")
	nodes := c.Nodes()
	nodes[0].(*fake.Node).SetState(provider.Exited, false)
	e := fake.NewEngine()
	t.Cleanup(e.Close)
	cli, err := e.Client()
	if err != nil {
		t.Fatal(err)
	}
	nodes[1].(*fake.Node).EngineClient = cli
	// A lab with a record whose machines are gone.
	if err := writeRecord(newRecord(named(fakeTopology(t), "gone"), "r2", "")); err != nil {
		t.Fatal(err)
	}
	host, err := f.host.Client()
	if err != nil {
		t.Fatal(err)
	}
	got, err := List(context.Background(), Options{Provider: f.p, Host: host})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "gone" || got[1].Name != "one" {
		t.Fatalf("List = %+v, want gone and one", got)
	}
	gone, one := got[0], got[1]
	if one.Provider != "docker" || one.Nodes != 3 || one.Engine != "29.0.0-fake" || one.Error != "" {
		t.Errorf("one = %+v, want docker, 3 nodes, engine 29.0.0-fake", one)
	}
	if one.Created.Before(before) || one.Created.After(time.Now()) {
		t.Errorf("one was created %v, want during the test", one.Created)
	}
	if gone.Nodes != 3 || gone.Engine != "" || !strings.Contains(gone.Error, `no such lab "gone"`) || gone.Created.IsZero() {
		t.Errorf("gone = %+v, want 3 nodes from its record, no engine, the error, its record's time", gone)
	}
}

// Where no node's engine answers, the summary says what was tried.
func TestEngineVersionSaysWhatItTried(t *testing.T) {
	l, _, _, w1 := fakeLab()
	w1.SetState(provider.Paused, false)
	_, err := l.engineVersion(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no node's engine told its version (m1: fake node m1 has no engine; w1 is paused)") {
		t.Errorf("engineVersion = %v", err)
	}
}
