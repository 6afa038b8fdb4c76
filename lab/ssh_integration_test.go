//go:build integration

package lab_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/swarmlab/swarmlab/lab"
	"github.com/swarmlab/swarmlab/lab/images"
	"github.com/swarmlab/swarmlab/lab/labtest"
	"github.com/swarmlab/swarmlab/lab/provider"
	"github.com/swarmlab/swarmlab/lab/provider/common"
	sshprovider "github.com/swarmlab/swarmlab/lab/provider/ssh"
	"github.com/swarmlab/swarmlab/lab/provider/ssh/sshhosts"
	"github.com/swarmlab/swarmlab/lab/topology"
	"github.com/swarmlab/swarmlab/lab/wait"
)

// TestSSHLab brings a lab up on three stand-in hosts through the ssh
// provider: engines reached over SSH only, the swarm formed, an image
// pushed to every host's registry and run on each, faults applied as
// commands on the hosts, and down leaving the hosts as they were.
func TestSSHLab(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	host, err := lab.Host(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const hostsName = "ssh-it"
	start := time.Now()
	hosts, err := sshhosts.Start(ctx, host, sshhosts.Options{
		Name: hostsName, Dir: t.TempDir(),
		Nodes: []sshhosts.Node{{Name: "m1", Role: "manager"}, {Name: "w1", Role: "worker"}, {Name: "w2", Role: "worker"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sshhosts.Remove(context.Background(), host, hostsName); err != nil {
			t.Errorf("removing the hosts: %v", err)
		}
	})
	t.Logf("3 hosts ready in %.1fs: %v", time.Since(start).Seconds(), hosts.Addrs)

	topo, _, err := topology.LoadFile(hosts.Topology)
	if err != nil {
		t.Fatal(err)
	}
	name := "ssh-it-lab"
	l, err := labtest.UpFor(ctx, topo, lab.Options{Name: name, Out: labtest.Writer(t)})
	if err != nil {
		t.Fatal(err)
	}
	release := labtest.RemoveOnInterrupt(l)
	downed := false
	t.Cleanup(func() {
		defer release()
		if !downed {
			if err := l.Down(context.Background()); err != nil {
				t.Errorf("down: %v", err)
			}
		}
	})
	t.Logf("lab up in %.1fs", l.BringUp().Total.Seconds())

	t.Run("swarm formed over SSH", func(t *testing.T) {
		assertSwarm(t, l)
		for _, n := range l.Cluster().Nodes() {
			if !strings.HasPrefix(n.DockerHost(), "ssh://root@"+hosts.Addrs[n.Name()]) {
				t.Errorf("node %s engine %q, want ssh://root@%s:22", n.Name(), n.DockerHost(), hosts.Addrs[n.Name()])
			}
		}
		// The hosts' engines listen on no TCP port: only SSH reaches them.
		w1, err := l.Node("w1")
		if err != nil {
			t.Fatal(err)
		}
		out, err := w1.Exec(ctx, "sh", "-c", "cat /proc/net/tcp /proc/net/tcp6 | awk '$4 == \"0A\" {print $2}'")
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range strings.Fields(out) {
			if strings.HasSuffix(a, ":0947") || strings.HasSuffix(a, ":094C") { // 2375, 2380
				t.Errorf("w1 listens on a Docker TCP port: %s", a)
			}
		}
	})

	t.Run("reopened by name", func(t *testing.T) {
		names, err := lab.Labs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(names, name) {
			t.Errorf("lab.Labs() = %v, want it to list %s", names, name)
		}
		o, err := lab.Open(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if o.Provider().Name() != topology.ProviderSSH || len(o.Cluster().Nodes()) != 3 || o.RunID() != l.RunID() {
			t.Errorf("reopened: provider %s, %d nodes, run %s; want ssh, 3, %s", o.Provider().Name(), len(o.Cluster().Nodes()), o.RunID(), l.RunID())
		}
		st, err := o.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Leader != "m1" {
			t.Errorf("reopened lab's leader = %q, want m1", st.Leader)
		}
	})

	t.Run("an image pushed by the lab runs on every host", func(t *testing.T) {
		root, err := images.ModuleRoot(".")
		if err != nil {
			t.Fatal(err)
		}
		ref, err := l.Stacks().BuildGoImage(ctx, images.GoImage{Repo: "swarmlab/echo", ModuleDir: root, Packages: []string{"./app/echo"}})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(ref, sshprovider.RegistryAddr+"/") {
			t.Errorf("image ref %s, want it from %s", ref, sshprovider.RegistryAddr)
		}
		mgr, _, err := l.Manager(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, err = mgr.ServiceCreate(ctx, client.ServiceCreateOptions{Spec: swarm.ServiceSpec{
			Annotations:  swarm.Annotations{Name: "echo"},
			Mode:         swarm.ServiceMode{Global: &swarm.GlobalService{}},
			TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: ref}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		waitServiceRunning(ctx, t, l, "echo", 3)
	})

	t.Run("kill stops a host's engine, start brings it back", func(t *testing.T) {
		if err := l.Do(ctx, "w2", provider.Kill); err != nil {
			t.Fatal(err)
		}
		n, _ := l.Node("w2")
		if n.State().Running() {
			t.Errorf("w2 state %q after kill, want not running", n.State())
		}
		waitNodeState(ctx, t, l, "w2", swarm.NodeStateDown)
		if err := l.Do(ctx, "w2", provider.Start); err != nil {
			t.Fatal(err)
		}
		waitNodeState(ctx, t, l, "w2", swarm.NodeStateReady)
		waitServiceRunning(ctx, t, l, "echo", 3)
	})

	t.Run("partition cuts a host off its peers, heal restores it", func(t *testing.T) {
		if err := l.Do(ctx, "w1", provider.Partition); err != nil {
			t.Fatal(err)
		}
		n, _ := l.Node("w1")
		if !n.Partitioned() || !n.State().Running() {
			t.Errorf("w1 after partition: state %q partitioned %v, want running and partitioned", n.State(), n.Partitioned())
		}
		waitNodeState(ctx, t, l, "w1", swarm.NodeStateDown)
		rules, err := n.Exec(ctx, "iptables", "-S", common.PartitionChain)
		if err != nil || !strings.Contains(rules, "--dports 2377,7946") || !strings.Contains(rules, "--dports 7946,4789") {
			t.Errorf("w1's partition rules: %v\n%s", err, rules)
		}
		if err := l.Do(ctx, "w1", provider.Heal); err != nil {
			t.Fatal(err)
		}
		if n.Partitioned() {
			t.Error("w1 still partitioned after heal")
		}
		if out, err := n.Exec(ctx, "sh", "-c", "iptables -S | grep -ci swarmlab-partition || true"); err != nil || strings.TrimSpace(out) != "0" {
			t.Errorf("w1 keeps partition rules after heal: %q %v", out, err)
		}
		waitNodeState(ctx, t, l, "w1", swarm.NodeStateReady)
	})

	t.Run("pause is refused, clearly", func(t *testing.T) {
		err := l.Do(ctx, "w1", provider.Pause)
		if !errors.Is(err, provider.ErrNotSupported) || !strings.Contains(err.Error(), "ssh provider") {
			t.Errorf("pause: %v, want not supported by the ssh provider", err)
		}
	})

	t.Run("down leaves the swarm and removes only what the lab made", func(t *testing.T) {
		// Something of the host's own, which down must not touch.
		c, err := l.Client("w1")
		if err != nil {
			t.Fatal(err)
		}
		own, err := c.ContainerCreate(ctx, client.ContainerCreateOptions{Name: "not-the-labs", Image: images.Registry().Ref()})
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Down(ctx); err != nil {
			t.Fatal(err)
		}
		downed = true
		// A fresh provider: l's connections are closed by down.
		fresh, err := sshprovider.New(topo, host, images.Registry().Ref()).Open(ctx, provider.Record{Name: topo.Name, Topology: topo})
		if err != nil {
			t.Fatal(err)
		}
		defer fresh.Close()
		for _, fn := range fresh.Nodes() {
			n := topo.Nodes[slices.IndexFunc(topo.Nodes, func(tn topology.Node) bool { return tn.Name == fn.Name() })]
			c, err := fn.Engine(ctx)
			if err != nil {
				t.Fatal(err)
			}
			info, err := c.Info(ctx, client.InfoOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if info.Info.Swarm.LocalNodeState != swarm.LocalNodeStateInactive {
				t.Errorf("%s still in a swarm: %s", n.Name, info.Info.Swarm.LocalNodeState)
			}
			cs, err := c.ContainerList(ctx, client.ContainerListOptions{All: true})
			if err != nil {
				t.Fatal(err)
			}
			for _, ct := range cs.Items {
				if ct.ID != own.ID {
					t.Errorf("%s keeps container %v (%s)", n.Name, ct.Names, ct.Image)
				}
			}
			if n.Name == "w1" && !slices.ContainsFunc(cs.Items, func(s container.Summary) bool { return s.ID == own.ID }) {
				t.Error("down removed a container the lab did not make")
			}
		}
		if names, _ := lab.Labs(ctx); slices.Contains(names, name) {
			t.Errorf("lab %s still listed after down", name)
		}
		// What the e2e suite checks after down, on its hosts too.
		if left, err := l.Leftovers(ctx); err != nil || len(left) > 0 {
			t.Errorf("after down, Leftovers = %q, %v; want nothing", left, err)
		}
	})
}

func waitNodeState(ctx context.Context, t *testing.T, l *lab.Lab, node string, want swarm.NodeState) {
	t.Helper()
	start := time.Now()
	_, err := wait.For(ctx, "node "+node+" to be "+string(want), 2*time.Minute, 250*time.Millisecond, func(ctx context.Context) wait.Result {
		st, err := l.Status(ctx)
		if err != nil {
			return wait.Continue("%v", err)
		}
		n, ok := st.NodesByName()[node]
		if !ok {
			return wait.Continue("not listed")
		}
		if n.State == string(want) {
			return wait.Done(n.State)
		}
		return wait.Continue("%s", n.State)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s %s after %.1fs", node, want, time.Since(start).Seconds())
}

func waitServiceRunning(ctx context.Context, t *testing.T, l *lab.Lab, service string, want uint64) {
	t.Helper()
	_, err := wait.For(ctx, fmt.Sprintf("service %s to run %d tasks", service, want), 3*time.Minute, 500*time.Millisecond, func(ctx context.Context) wait.Result {
		st, err := l.Status(ctx)
		if err != nil {
			return wait.Continue("%v", err)
		}
		for _, s := range st.Services {
			if s.Name == service {
				if s.Running == want {
					return wait.Done(fmt.Sprintf("%d running", s.Running))
				}
				return wait.Continue("%d of %d running", s.Running, s.Desired)
			}
		}
		return wait.Continue("no service %s", service)
	})
	if err != nil {
		t.Fatal(err)
	}
}
