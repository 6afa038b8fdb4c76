package lab

import (
	"bytes"
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/swarmlab/swarmlab/lab/provider/fake"
	"github.com/swarmlab/swarmlab/lab/topology"
)

// These tests bring labs up on provider/fake, with a fake engine for this
// machine's: no Docker at all. Fake nodes have no engine, so a bring-up
// gets as far as preflight, which fails: the steps before it, and the
// cleanup, are what they test.

type fakeUp struct {
	p    *fake.Provider
	host *fake.Engine
	out  bytes.Buffer
}

func newFakeUp(t *testing.T) *fakeUp {
	t.Helper()
	stateHome(t)
	f := &fakeUp{p: fake.New(), host: fake.NewEngine()}
	t.Cleanup(f.host.Close)
	t.Setenv(HostEnv, f.host.Addr())
	return f
}

func (f *fakeUp) up(t *testing.T, ctx context.Context, topo *topology.Topology, opts Options) (*Lab, error) {
	t.Helper()
	c, err := f.host.Client()
	if err != nil {
		t.Fatal(err)
	}
	opts.Provider, opts.Host, opts.Out = f.p, c, &f.out
	return Up(ctx, topo, opts)
}

func stepLines(out string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 1 && (f[0] == "✓" || f[0] == "✗") {
			lines = append(lines, f[0]+" "+strings.Join(f[1:len(f)-1], " "))
		}
	}
	return lines
}

func TestPlanListsTheStepsInOrder(t *testing.T) {
	topo, _, err := topology.LoadFile("../topologies/swarm-3.yaml")
	if err != nil {
		t.Fatal(err)
	}
	l := &Lab{name: "plan", topo: topo}
	acts, err := plan(&upState{lab: l, d: &deployment{}})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range acts {
		names = append(names, a.Name())
	}
	want := []string{"Checking images", "Starting 3 nodes and the registry", "Preflight and registry push",
		"Forming the swarm", "Waiting for the swarm to converge", "Deploying 2 stacks"}
	// The stacks declare images: they are built alongside, from the start.
	if _, ok := acts[0].(alongside); !ok {
		t.Fatalf("the first action is %T %q, want the image job alongside", acts[0], acts[0].Name())
	}
	{
		job := acts[0].Name()
		want = append([]string{job}, want...)
		want = slices.Insert(want, len(want)-1, job)
		if _, ok := acts[len(acts)-2].(joinJob); !ok {
			t.Errorf("the image job is not joined before the deploy: %v", names)
		}
	}
	if !slices.Equal(names, want) {
		t.Errorf("plan = %q\nwant %q", names, want)
	}
}

// A bring-up that fails removes what its run made (DeleteRun with its
// run id) and its state, and says which step failed; Up leaves the
// caller's topology as it was.
func TestUpOnAFakeProviderCleansUpOnFailure(t *testing.T) {
	f := newFakeUp(t)
	topo := fakeTopology(t)
	was := topo.Name
	l, err := f.up(t, context.Background(), topo, Options{Name: "fk"})
	if err == nil || !strings.HasPrefix(err.Error(), "preflight and registry push: ") || !strings.Contains(err.Error(), "has no engine") {
		t.Fatalf("Up = %v, want preflight to fail on the fake nodes", err)
	}
	if topo.Name != was {
		t.Errorf("Up renamed its caller's topology to %q", topo.Name)
	}
	want := []string{"✓ Checking images", "✓ Starting 3 nodes and the registry", "✗ Preflight and registry push"}
	if got := stepLines(f.out.String()); !slices.Equal(got, want) {
		t.Errorf("steps %q, want %q\n%s", got, want, f.out.String())
	}
	if l == nil || l.runID == "" || !slices.Equal(f.p.Deleted, []string{"fk/" + l.runID}) {
		t.Errorf("deleted %v, want only this run's", f.p.Deleted)
	}
	if f.p.Lab("fk") != nil {
		t.Error("the fake lab is still there")
	}
	if _, err := os.Stat(StateDir("fk")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state dir left: %v", err)
	}
	if c, ok := l.cluster.(*fake.Cluster); !ok || !c.Closed() {
		t.Error("the cluster was not closed")
	}
}

// --keep-on-failure keeps the lab, and its record so that down finds it.
func TestUpOnAFakeProviderKeepsOnFailure(t *testing.T) {
	f := newFakeUp(t)
	_, err := f.up(t, context.Background(), fakeTopology(t), Options{Name: "fk", KeepOnFailure: true})
	if err == nil {
		t.Fatal("Up succeeded on fake nodes")
	}
	if len(f.p.Deleted) != 0 || f.p.Lab("fk") == nil {
		t.Errorf("deleted %v, want the lab kept", f.p.Deleted)
	}
	if !strings.Contains(f.out.String(), "lab fk kept for inspection (--keep-on-failure); remove it with: swarmlab down fk") {
		t.Errorf("output:\n%s", f.out.String())
	}
	if rec, err := readRecord("fk"); err != nil || rec == nil || rec.Provider != topology.ProviderDocker {
		t.Errorf("record of the kept lab: %+v, %v", rec, err)
	}
}

// A step that panics: what the run made is removed, then the panic goes on.
func TestUpOnAFakeProviderCleansUpOnPanic(t *testing.T) {
	f := newFakeUp(t)
	f.p.OnCreate = func(context.Context, *fake.Cluster) { panic("boom in create") }
	var l *Lab
	func() {
		defer func() {
			if r := recover(); r != "boom in create" {
				t.Errorf("recovered %v, want the step's panic", r)
			}
		}()
		l, _ = f.up(t, context.Background(), fakeTopology(t), Options{Name: "fk"})
	}()
	if l != nil {
		t.Error("Up returned")
	}
	if len(f.p.Deleted) != 1 || !strings.HasPrefix(f.p.Deleted[0], "fk/") || f.p.Lab("fk") != nil {
		t.Errorf("deleted %v, want this run's lab removed", f.p.Deleted)
	}
	if hasRecord("fk") {
		t.Error("the record is left")
	}
}

// A bring-up cancelled while its machines are made is removed, even with
// --keep-on-failure, and its error says so.
func TestUpOnAFakeProviderCancelled(t *testing.T) {
	f := newFakeUp(t)
	ctx, cancel := context.WithCancelCause(context.Background())
	f.p.OnCreate = func(context.Context, *fake.Cluster) { cancel(errors.New("interrupted by the test")) }
	l, err := f.up(t, ctx, fakeTopology(t), Options{Name: "fk", KeepOnFailure: true})
	if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "starting 3 nodes and the registry: ") {
		t.Fatalf("Up = %v", err)
	}
	if !slices.Equal(f.p.Deleted, []string{"fk/" + l.runID}) {
		t.Errorf("deleted %v", f.p.Deleted)
	}
	if !strings.Contains(f.out.String(), "bring-up of lab fk cancelled (interrupted by the test): removing what it made") {
		t.Errorf("output:\n%s", f.out.String())
	}
	if _, err := os.Stat(StateDir("fk")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state dir left: %v", err)
	}
}

// A second up of a name that has a record fails before it makes anything,
// and removes nothing of the lab that holds the name.
func TestUpOfARecordedNameChangesNothing(t *testing.T) {
	f := newFakeUp(t)
	rec := newRecord(named(fakeTopology(t), "fk"), "first", "")
	if err := writeRecord(rec); err != nil {
		t.Fatal(err)
	}
	_, err := f.up(t, context.Background(), fakeTopology(t), Options{Name: "fk"})
	if err == nil || !strings.Contains(err.Error(), `a lab named "fk" is already running (run first)`) {
		t.Fatalf("Up = %v", err)
	}
	if got, _ := readRecord("fk"); got == nil || got.RunID != "first" {
		t.Errorf("the first lab's record was changed: %+v", got)
	}
	if len(f.p.Deleted) != 1 || f.p.Deleted[0] == "fk" {
		t.Errorf("deleted %v: only this run's may be", f.p.Deleted)
	}
}
