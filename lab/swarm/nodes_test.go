package swarm

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// fakeEngine answers the calls this package makes; any other call panics
// (the embedded interface is nil).
type fakeEngine struct {
	client.APIClient
	mu       sync.Mutex
	lists    [][]swarm.Node // NodeList answers, in turn; the last repeats
	listed   int
	tokens   swarm.JoinTokens
	joins    []client.SwarmJoinOptions
	leaves   []client.SwarmLeaveOptions
	updates  map[string]swarm.NodeSpec // by node ID
	leaveErr error
}

func (f *fakeEngine) NodeList(context.Context, client.NodeListOptions) (client.NodeListResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := min(f.listed, len(f.lists)-1)
	f.listed++
	return client.NodeListResult{Items: f.lists[i]}, nil
}

func (f *fakeEngine) SwarmInspect(context.Context, client.SwarmInspectOptions) (client.SwarmInspectResult, error) {
	return client.SwarmInspectResult{Swarm: swarm.Swarm{JoinTokens: f.tokens}}, nil
}

func (f *fakeEngine) SwarmJoin(_ context.Context, o client.SwarmJoinOptions) (client.SwarmJoinResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.joins = append(f.joins, o)
	return client.SwarmJoinResult{}, nil
}

func (f *fakeEngine) NodeUpdate(_ context.Context, id string, o client.NodeUpdateOptions) (client.NodeUpdateResult, error) {
	if f.updates == nil {
		f.updates = map[string]swarm.NodeSpec{}
	}
	f.updates[id] = o.Spec
	return client.NodeUpdateResult{}, nil
}

func (f *fakeEngine) SwarmLeave(_ context.Context, o client.SwarmLeaveOptions) (client.SwarmLeaveResult, error) {
	f.leaves = append(f.leaves, o)
	return client.SwarmLeaveResult{}, f.leaveErr
}

// A rejoined node's old entry is Down; wherever it is listed (before or
// after the new one), the Ready entry is the one looked up.
func TestByHostnameReadyWinsOverStale(t *testing.T) {
	stale := node("m2", Manager, swarm.NodeStateDown, false, nil)
	stale.ID = "old"
	live := node("m2", Manager, swarm.NodeStateReady, false, nil)
	live.ID = "new"
	other := node("w1", Worker, swarm.NodeStateDown, false, nil)
	other.ID = "w1"
	for name, nodes := range map[string][]swarm.Node{
		"stale first": {stale, live, other},
		"stale last":  {other, live, stale},
	} {
		t.Run(name, func(t *testing.T) {
			got := ByHostname(nodes)
			if len(got) != 2 || got["m2"].ID != "new" || got["w1"].ID != "w1" {
				t.Errorf("ByHostname = %v, want m2 -> new and w1 -> w1", ids(got))
			}
		})
	}
	// None Ready: the first listed.
	a, b := node("w2", Worker, swarm.NodeStateDown, false, nil), node("w2", Worker, swarm.NodeStateUnknown, false, nil)
	a.ID, b.ID = "a", "b"
	if got := ByHostname([]swarm.Node{a, b})["w2"].ID; got != "a" {
		t.Errorf("no entry Ready: got %s, want the first listed (a)", got)
	}

	// The same rule on a status.
	st := &Status{Nodes: []NodeStatus{{Name: "m2", ID: "old", State: "down"}, {Name: "m2", ID: "new", State: "ready"}, {Name: "m2", ID: "older", State: "down"}}}
	if got := st.NodesByName()["m2"].ID; got != "new" {
		t.Errorf("Status.NodesByName: m2 -> %s, want new", got)
	}
	if got := (*Status)(nil).NodesByName(); len(got) != 0 {
		t.Errorf("nil status: %v", got)
	}
}

func ids(m map[string]swarm.Node) map[string]string {
	out := map[string]string{}
	for k, n := range m {
		out[k] = n.ID
	}
	return out
}

func TestNodeByHostname(t *testing.T) {
	stale := node("w1", Worker, swarm.NodeStateDown, false, nil)
	stale.ID = "old"
	live := node("w1", Worker, swarm.NodeStateReady, false, nil)
	live.ID = "new"
	mgr := &fakeEngine{lists: [][]swarm.Node{{stale, live}}}
	n, err := NodeByHostname(context.Background(), mgr, "w1")
	if err != nil || n.ID != "new" {
		t.Fatalf("NodeByHostname(w1) = %s, %v; want new", n.ID, err)
	}
	if _, err := NodeByHostname(context.Background(), mgr, "w9"); err == nil || !strings.Contains(err.Error(), "node w9 is not in the swarm") {
		t.Errorf("missing node: %v", err)
	}
}

func TestJoinUsesTheTokenOfTheRole(t *testing.T) {
	mgr := &fakeEngine{tokens: swarm.JoinTokens{Manager: "SWMTKN-m", Worker: "SWMTKN-w"}}
	via := Member{Name: "m1", Role: Manager, Addr: "10.0.0.2", Client: mgr}
	for _, tc := range []struct{ role, token string }{{Manager, "SWMTKN-m"}, {Worker, "SWMTKN-w"}} {
		joiner := &fakeEngine{}
		m := Member{Name: "n-" + tc.role, Role: tc.role, Addr: "10.0.0.9", Client: joiner}
		if err := Join(context.Background(), via, m); err != nil {
			t.Fatal(err)
		}
		if len(joiner.joins) != 1 {
			t.Fatalf("%d join calls", len(joiner.joins))
		}
		j := joiner.joins[0]
		if j.JoinToken != tc.token || j.AdvertiseAddr != "10.0.0.9" || len(j.RemoteAddrs) != 1 || j.RemoteAddrs[0] != "10.0.0.2:2377" {
			t.Errorf("%s joined with %+v", tc.role, j)
		}
	}
}

func TestLeaveIsForcedAndFineOutsideASwarm(t *testing.T) {
	e := &fakeEngine{}
	m := Member{Name: "m2", Client: e}
	if err := Leave(context.Background(), m); err != nil || len(e.leaves) != 1 || !e.leaves[0].Force {
		t.Fatalf("Leave: %v, calls %+v; want one forced leave", err, e.leaves)
	}
	e.leaveErr = errors.New("Error response from daemon: This node is not part of a swarm")
	if err := Leave(context.Background(), m); err != nil {
		t.Errorf("leaving outside a swarm: %v, want nil", err)
	}
	e.leaveErr = errors.New("Error response from daemon: context deadline exceeded")
	if err := Leave(context.Background(), m); err == nil || !strings.Contains(err.Error(), "m2 leaving its swarm") {
		t.Errorf("a failed leave: %v", err)
	}
}

// A join returns before the manager lists the node: the wait says who is
// missing until every member is listed.
func TestWaitListed(t *testing.T) {
	m1 := node("m1", Manager, swarm.NodeStateReady, true, nil)
	w1 := node("w1", Worker, swarm.NodeStateReady, false, nil)
	members := []Member{{Name: "m1", Role: Manager}, {Name: "w1", Role: Worker}}
	mgr := &fakeEngine{lists: [][]swarm.Node{{m1}, {m1}, {m1, w1}}}
	nodes, err := WaitListed(context.Background(), mgr, members, 5*time.Second)
	if err != nil || len(nodes) != 2 || mgr.listed != 3 {
		t.Fatalf("WaitListed: %d nodes after %d lists, %v", len(nodes), mgr.listed, err)
	}
	_, err = WaitListed(context.Background(), &fakeEngine{lists: [][]swarm.Node{{m1}}}, members, 50*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "all 2 nodes to be listed") || !strings.Contains(err.Error(), "not listed yet: w1") {
		t.Errorf("timeout: %v", err)
	}
}

// A rejoined node is configured through its new entry, not its stale one.
func TestConfigureUpdatesTheLiveEntry(t *testing.T) {
	stale := node("m2", Manager, swarm.NodeStateDown, false, nil)
	stale.ID = "old"
	live := node("m2", Manager, swarm.NodeStateReady, false, nil)
	live.ID = "new"
	mgr := &fakeEngine{lists: [][]swarm.Node{{live, stale}}}
	err := Configure(context.Background(), mgr, []Member{{Name: "m2", Role: Manager, Labels: map[string]string{"zone": "a"}, Availability: "drain"}})
	if err != nil {
		t.Fatal(err)
	}
	spec, ok := mgr.updates["new"]
	if len(mgr.updates) != 1 || !ok || spec.Labels["zone"] != "a" || spec.Availability != swarm.NodeAvailabilityDrain {
		t.Errorf("updates %+v, want only the live entry (new) labelled zone=a and drained", mgr.updates)
	}
}
