//go:build integration

//swarmlab:labs (these tests bring up labs: scripts/test runs them apart from other labs)

package docker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/swarmlab/swarmlab/lab"
	"github.com/swarmlab/swarmlab/lab/labtest"
	"github.com/swarmlab/swarmlab/lab/provider"
	"github.com/swarmlab/swarmlab/lab/provider/common"
	"github.com/swarmlab/swarmlab/lab/topology"
	"github.com/swarmlab/swarmlab/lab/wait"
)

// The smallest swarm a worker can fail in: one manager to watch, one worker.
const lifecycleTopology = `apiVersion: swarmlab.dev/v1alpha1
kind: Topology
name: it-lifecycle
swarm:
  dispatcherHeartbeat: 1s
nodes:
  - {name: m1, role: manager}
  - {name: w1, role: worker}
`

// TestStopStartPauseUnpause applies the docker provider's stop, start, pause
// and unpause to a worker, and checks each through the host engine (the
// container's state), the provider (Get's node state) and the swarm (the
// manager's node list). Nothing tested these actions before: stop could
// have killed, pause could have stopped, or either could have done nothing,
// and every test would still have passed; the kill/start and partition
// tests of lab_test never touch them.
func TestStopStartPauseUnpause(t *testing.T) {
	topo, err := topology.Parse([]byte(lifecycleTopology), "it-lifecycle.yaml")
	if err != nil {
		t.Fatal(err)
	}
	topo.Default()
	if _, err := topo.Validate(); err != nil {
		t.Fatal(err)
	}
	l := labtest.Up(t, topo, "it-lifecycle")
	ctx := context.Background()
	const node = "w1"
	swarmState(t, l, node, swarm.NodeStateReady)

	steps := []struct {
		action provider.Action
		// container is the state the host engine and the provider must
		// report as soon as Do returns.
		container container.ContainerState
		// inSwarm is the state the manager must come to.
		inSwarm swarm.NodeState
	}{
		// A stopped worker's container has exited (a stop that did
		// nothing would leave it running) and the manager loses it.
		{provider.Stop, container.StateExited, swarm.NodeStateDown},
		{provider.Start, container.StateRunning, swarm.NodeStateReady},
		// A paused worker is frozen, not gone: the container is paused
		// (a pause implemented as stop would show "exited"), and the
		// manager marks it Down only when its heartbeats stop arriving.
		{provider.Pause, container.StatePaused, swarm.NodeStateDown},
		{provider.Unpause, container.StateRunning, swarm.NodeStateReady},
	}
	for _, s := range steps {
		start := time.Now()
		n, err := l.Node(node)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Apply(ctx, s.action); err != nil {
			t.Fatal(err)
		}
		did := time.Since(start)
		containerState(t, l, node, s.container)
		providerState(t, l, node, s.container)
		took := swarmState(t, l, node, s.inSwarm)
		t.Logf("%s %s: returned in %.1fs, container %s, swarm %s %.1fs later", s.action, node, did.Seconds(), s.container, s.inSwarm, took.Seconds())
	}
}

// containerState checks the node container's state on the host engine.
func containerState(t *testing.T, l *lab.Lab, node string, want container.ContainerState) {
	t.Helper()
	ctx := context.Background()
	f := make(client.Filters).Add("label", common.LabelLab+"="+l.Name()).Add("label", common.LabelNode+"="+node).Add("label", common.LabelComponent+"="+common.ComponentNode)
	cs, err := l.Host().ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs.Items) != 1 {
		t.Fatalf("node %s: %d containers, want 1", node, len(cs.Items))
	}
	ins, err := l.Host().ContainerInspect(ctx, cs.Items[0].ID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st := ins.Container.State
	if st.Status != want {
		t.Errorf("node %s: container is %s (running=%v paused=%v), want %s", node, st.Status, st.Running, st.Paused, want)
	}
	if wantPaused := want == container.StatePaused; st.Paused != wantPaused {
		t.Errorf("node %s: container paused=%v, want %v", node, st.Paused, wantPaused)
	}
}

// providerState checks what a cluster the provider opens afresh says of
// the node.
func providerState(t *testing.T, l *lab.Lab, node string, want container.ContainerState) {
	t.Helper()
	c, err := l.Provider().Open(context.Background(), provider.Record{Name: l.Name(), RunID: l.RunID(), Topology: l.Topology()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	n, err := provider.Find(c, node)
	if err != nil {
		t.Fatal(err)
	}
	if st := n.State(); st != provider.State(want) {
		t.Errorf("provider: node %s is %q, want %q", node, st, want)
	}
	if wantRunning := want == container.StateRunning; n.State().Running() != wantRunning {
		t.Errorf("provider: node %s Running() = %v in state %q, want %v", node, n.State().Running(), n.State(), wantRunning)
	}
}

// swarmState waits until the manager sees node in state want, and returns
// how long that took.
func swarmState(t *testing.T, l *lab.Lab, node string, want swarm.NodeState) time.Duration {
	t.Helper()
	start := time.Now()
	_, err := wait.For(context.Background(), fmt.Sprintf("the manager to see node %s %s", node, want), 60*time.Second, 200*time.Millisecond,
		func(ctx context.Context) wait.Result {
			mgr, _, err := l.Manager(ctx)
			if err != nil {
				return wait.Continue("%v", err)
			}
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			nodes, err := mgr.NodeList(cctx, client.NodeListOptions{})
			if err != nil {
				return wait.Continue("node list: %v", err)
			}
			for _, n := range nodes.Items {
				if n.Description.Hostname != node {
					continue
				}
				if n.Status.State == want {
					return wait.Done(string(n.Status.State))
				}
				return wait.Continue("%s is %s (%s)", node, n.Status.State, n.Status.Message)
			}
			return wait.Continue("%s is not in the node list", node)
		})
	if err != nil {
		t.Fatal(err)
	}
	return time.Since(start)
}
