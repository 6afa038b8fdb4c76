package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/swarmlab/swarmlab/lab/provider"
	"github.com/swarmlab/swarmlab/lab/provider/fake"
	"github.com/swarmlab/swarmlab/lab/topology"
)

func stateHome(t *testing.T) {
	t.Helper()
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
}

// Every lab has a record: its topology, provider, run and access, which
// gives an opened lab its topology under the lab's name.
func TestRecordRoundTrip(t *testing.T) {
	stateHome(t)
	topo := named(fakeTopology(t), "rec")
	rec := newRecord(topo, "r1", "tcp://127.0.0.1:2375")
	if err := writeRecord(rec); err != nil {
		t.Fatal(err)
	}
	got, err := readRecord("rec")
	if err != nil || got == nil || got.Topology == nil {
		t.Fatalf("readRecord: %v, %v", got, err)
	}
	gt := got.Topology
	if st := (&Lab{name: "rec"}).State(); st.Dir() != StateDir("rec") {
		t.Errorf("State().Dir() = %s", st.Dir())
	} else if r, err := st.Record(); err != nil || r == nil || r.RunID != "r1" {
		t.Errorf("State().Record() = %+v, %v", r, err)
	}
	if got.Created.IsZero() || !got.Created.Equal(rec.Created) {
		t.Errorf("recorded creation time %v, want %v", got.Created, rec.Created)
	}
	if got.Provider != topology.ProviderDocker || got.RunID != "r1" || got.Access.Engine != "tcp://127.0.0.1:2375" {
		t.Errorf("record %+v", got)
	}
	abs, _ := filepath.Abs("../topologies/swarm-3.yaml")
	if gt.Source() != abs {
		t.Errorf("recorded source %q; want %q", gt.Source(), abs)
	}
	// As Up had it: fakeTopology has dropped the file's stacks.
	if gt.Name != "rec" || len(gt.Nodes) != len(topo.Nodes) || len(gt.Stacks) != 0 {
		t.Errorf("recorded topology %s with %d nodes and %d stacks", gt.Name, len(gt.Nodes), len(gt.Stacks))
	}
	if names, err := recordedLabs(); err != nil || !slices.Equal(names, []string{"rec"}) {
		t.Errorf("recordedLabs = %v, %v", names, err)
	}
	// A second record of the name is refused, as a lab that exists.
	err = writeRecord(rec)
	if !errors.Is(err, provider.ErrExists) || !strings.Contains(err.Error(), `a lab named "rec" is already running (run r1)`) {
		t.Errorf("second record: %v", err)
	}
	if err := removeRecord("rec"); err != nil {
		t.Fatal(err)
	}
	if r, err := readRecord("rec"); r != nil || err != nil {
		t.Errorf("after removeRecord: %v, %v", r, err)
	}
}

// A topology built in code has no file: its record holds it as YAML.
func TestRecordOfATopologyBuiltInCode(t *testing.T) {
	stateHome(t)
	topo := &topology.Topology{APIVersion: topology.APIVersion, Kind: topology.Kind, Name: "code",
		Nodes: []topology.Node{{Name: "m1", Role: "manager"}, {Name: "w1", Role: "worker"}}}
	topo.Default()
	if err := writeRecord(newRecord(topo, "r2", "")); err != nil {
		t.Fatal(err)
	}
	rec, err := readRecord("code")
	if err != nil || rec == nil {
		t.Fatalf("readRecord: %v", err)
	}
	if gt := rec.Topology; len(gt.Nodes) != 2 || gt.Nodes[1].Role != "worker" {
		t.Fatalf("readRecord: %+v", gt)
	}
}

// An ssh lab made before every lab had a record left its topology file
// and its source path: it is still found.
func TestLegacyRecord(t *testing.T) {
	stateHome(t)
	dir := StateDir("old")
	os.MkdirAll(dir, 0o700)
	data, err := os.ReadFile("../topologies/swarm-3.yaml")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, legacyRecordFile), data, 0o600)
	os.WriteFile(filepath.Join(dir, legacyRecordSource), []byte("/somewhere/swarm-3.yaml\nold\n"), 0o600)
	rec, err := readRecord("old")
	if err != nil || rec == nil {
		t.Fatalf("legacy record: %v", err)
	}
	if gt := rec.Topology; gt.Name != "old" || gt.Source() != "/somewhere/swarm-3.yaml" {
		t.Fatalf("legacy record: %+v, %v", rec, err)
	}
	if names, _ := recordedLabs(); !slices.Equal(names, []string{"old"}) {
		t.Errorf("recordedLabs = %v", names)
	}
}

// A docker lab opened without a record (made before records) still has a
// topology: made from its nodes when its file cannot be read.
func TestTopologyOfALabWithoutRecord(t *testing.T) {
	c := fake.NewCluster("norec", "r1")
	c.TopologyPath = "/nowhere/gone.yaml"
	c.Add("m1", "manager", "10.0.0.10")
	c.Add("w1", "worker", "10.0.0.11")
	topo := topologyOf(nil, c)
	if topo == nil || topo.Name != "norec" || len(topo.Nodes) != 2 || topo.Nodes[1].Role != "worker" {
		t.Fatalf("topology %+v", topo)
	}
	c.TopologyPath, _ = filepath.Abs("../topologies/swarm-3.yaml")
	if topo := topologyOf(nil, c); topo.Name != "norec" || len(topo.Stacks) == 0 {
		t.Errorf("from its file: %+v", topo)
	}
}

func TestNamedCopiesTheTopology(t *testing.T) {
	topo := fakeTopology(t)
	was := topo.Name
	c := named(topo, "other")
	c.Nodes[0].Name = "changed"
	if topo.Name != was || topo.Nodes[0].Name == "changed" || c.Name != "other" {
		t.Errorf("named changed its argument: %s %s", topo.Name, topo.Nodes[0].Name)
	}
	if named(topo, "").Name != was {
		t.Error("no name should keep the topology's")
	}
}

// The swarm is the lab's to end, on machines that outlive the lab; the
// machines are the provider's to delete.
func TestTeardownSplit(t *testing.T) {
	ctx := context.Background()
	for _, persistent := range []bool{false, true} {
		p := fake.New()
		p.KeepsMachines = persistent
		c := fake.NewCluster("td", "r1")
		n := c.Add("m1", "manager", "10.0.0.10")
		n.SetState(provider.Running, true)
		if err := teardown(ctx, p, c, "td", "r1"); err != nil {
			t.Fatal(err)
		}
		healed := slices.Equal(n.Applied(), []provider.Action{provider.Heal})
		if healed != persistent {
			t.Errorf("persistent %v: applied %v", persistent, n.Applied())
		}
		if !slices.Equal(p.Deleted, []string{"td/r1"}) {
			t.Errorf("persistent %v: deleted %v", persistent, p.Deleted)
		}
	}
}

// The record holds the topology as Up had it, which reads back the same.
func TestRecordedTopologyReadsBackTheSame(t *testing.T) {
	stateHome(t)
	files := []string{"../topologies/swarm-3.yaml", "../topologies/vote-6.yaml", "../topologies/swarm-ha.yaml",
		"testdata/web-3.yaml", "../app/invoices/e2e/testdata/swarm-3-invoices.yaml"}
	for i, f := range files {
		topo, _, err := topology.LoadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 { // as an ssh lab, with every field of a node's host
			topo.Provider.Type = topology.ProviderSSH
			for j := range topo.Nodes {
				topo.Nodes[j].SSH = &topology.SSH{Address: "10.0.0.1", User: "admin", Port: 22, IdentityFile: "/k", KnownHosts: "/kh", AdvertiseAddr: "10.0.0.1"}
			}
		}
		name := fmt.Sprintf("rt%d", i)
		topo = named(topo, name)
		if err := writeRecord(newRecord(topo, "r", "")); err != nil {
			t.Fatal(err)
		}
		rec, err := readRecord(name)
		if err != nil {
			data, _ := os.ReadFile(filepath.Join(StateDir(name), recordFile))
			t.Fatalf("%s: %v\n%s", f, err, data)
		}
		got := rec.Topology
		g, _ := yaml.Marshal(got)
		w, _ := yaml.Marshal(topo)
		if string(g) != string(w) {
			t.Errorf("%s: read back\n%s\nwant\n%s", f, g, w)
		}
		for j := range topo.Stacks {
			if got.StackPath(j) != topo.StackPath(j) {
				t.Errorf("%s: stack %d at %s, want %s", f, j, got.StackPath(j), topo.StackPath(j))
			}
		}
	}
}

// Two ups of one name at the same moment: both pass the "has a record"
// look, and only the exclusive create lets exactly one of them have the
// name. (Red when the record is opened with O_TRUNC instead of O_EXCL:
// several writers all succeed.)
func TestConcurrentRecordsOfOneNameOneWins(t *testing.T) {
	stateHome(t)
	topo := named(fakeTopology(t), "race")
	const writers = 16
	errs := make([]error, writers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			<-start
			errs[i] = writeRecord(newRecord(topo, fmt.Sprintf("r%d", i), "tcp://127.0.0.1:2375"))
		})
	}
	close(start)
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, provider.ErrExists):
			t.Errorf("a losing writer got %v, want ErrExists", err)
		}
	}
	if won != 1 {
		t.Errorf("%d of %d concurrent records of one name were written, want exactly 1", won, writers)
	}
}

// A record written before records had a time gets its file's.
func TestRecordWithoutACreatedTime(t *testing.T) {
	stateHome(t)
	rec := newRecord(named(fakeTopology(t), "old"), "r1", "")
	rec.Created = time.Time{}
	if err := writeRecord(rec); err != nil {
		t.Fatal(err)
	}
	got, err := readRecord("old")
	if err != nil || got.Created.IsZero() || time.Since(got.Created) > time.Minute {
		t.Errorf("record of an old lab: created %v, %v; want its file's time", got.Created, err)
	}
}
