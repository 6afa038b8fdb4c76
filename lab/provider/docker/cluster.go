package docker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"

	"github.com/swarmlab/swarmlab/lab/internal/engine"
	"github.com/swarmlab/swarmlab/lab/provider"
	"github.com/swarmlab/swarmlab/lab/provider/common"
)

// cluster is a handle on a docker lab: its node containers and registry on
// the host engine. Each node's engine is published on the engine host's
// 127.0.0.1, and its own published ports answer at its address on the lab
// network; this process reaches both as c.reach says (access.go).
type cluster struct {
	p           *Provider
	name        string
	recordedRun string // the run the lab's record names, if any
	reach       reachFunc
	relay       *relay // nil when the lab is reached directly
	closeReach  func()

	mu       sync.Mutex
	run      string
	topology string
	registry provider.Registry
	nodes    []*node
}

// node is a handle on one node container.
type node struct {
	c          *cluster
	name, role string
	addr       string // on the lab network
	port       int    // the engine's port on 127.0.0.1
	provider.Seen

	clientMu sync.Mutex
	client   *client.Client
}

func (c *cluster) Name() string { return c.name }

func (c *cluster) RunID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return cmp.Or(c.run, c.recordedRun)
}

func (c *cluster) Topology() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.topology
}

func (c *cluster) Registry() provider.Registry {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.registry
	r.Push = append([]string(nil), r.Push...)
	for _, a := range r.Push {
		if local, err := c.reach(a); err == nil && local != a {
			r.Query = append(r.Query, local)
		}
	}
	// The cache is asked only from here: at its published port, or the
	// relay to it.
	if q := r.DockerIO.Query; q != "" {
		if local, err := c.reach(q); err == nil {
			r.DockerIO.Query = local
		}
	}
	return r
}

func (c *cluster) Nodes() []provider.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return provider.Handles(c.nodes)
}

// PublishedAddr implements provider.Cluster: a published port answers at
// the node's address on the lab network, reached as c.reach says.
func (c *cluster) PublishedAddr(name string, port uint16) (string, error) {
	target, err := provider.AddrAt(c, name, port)
	if err != nil {
		return "", err
	}
	return c.reach(target)
}

// Refresh implements provider.Cluster: it reads the lab's containers, and
// whether each running node is partitioned. Handles on nodes that are still
// there stay valid.
func (c *cluster) Refresh(ctx context.Context) error {
	p := c.p
	cs, err := p.host.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: common.LabFilter(c.name)})
	if err != nil {
		return fmt.Errorf("listing containers of lab %s: %w", c.name, err)
	}
	if len(cs.Items) == 0 {
		return fmt.Errorf("%w %q (see swarmlab status for the labs that exist)", provider.ErrNotFound, c.name)
	}
	type indexed struct {
		i     int
		n     *node
		state provider.State
	}
	var (
		run, topo string
		reg       provider.Registry
		found     []indexed
	)
	for _, s := range cs.Items {
		run = s.Labels[common.LabelRun]
		topo = s.Labels[common.LabelTopology]
		switch s.Labels[common.LabelComponent] {
		case common.ComponentRegistry:
			if hp := hostPort(s.Ports, 5000); hp != 0 {
				reg.Push = []string{fmt.Sprintf("127.0.0.1:%d", hp)}
			}
			reg.Pull = RegistryAlias + ":5000"
			reg.Mirror = true
		case common.ComponentDockerIO:
			if hp := hostPort(s.Ports, 5000); hp != 0 {
				reg.DockerIO = provider.DockerIOCache{
					Pull: DockerIOAlias + ":5000", Query: fmt.Sprintf("127.0.0.1:%d", hp), Upstream: s.Labels[common.LabelUpstream],
				}
			}
		case common.ComponentNode:
			port, err := p.enginePort(ctx, s.ID)
			if err != nil {
				return err
			}
			n := &node{
				c: c, name: s.Labels[common.LabelNode], role: s.Labels[common.LabelRole], addr: s.Labels[common.LabelAddr],
				port: port,
			}
			i, _ := strconv.Atoi(s.Labels[common.LabelIndex])
			found = append(found, indexed{i, n, provider.State(s.State)})
		}
	}
	sort.Slice(found, func(a, b int) bool { return found[a].i < found[b].i })
	partitioned := make([]bool, len(found))
	var wg sync.WaitGroup
	for i, f := range found {
		if !f.state.Running() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := engine.Exec(ctx, p.host, containerName(c.name, f.n.name), "sh", "-c", common.PartitionedScript)
			partitioned[i] = err == nil && r.ExitCode == 0
		}()
	}
	wg.Wait()

	c.mu.Lock()
	defer c.mu.Unlock()
	old := map[string]*node{}
	for _, n := range c.nodes {
		old[n.name] = n
	}
	c.run, c.topology, c.registry = run, topo, reg
	c.nodes = c.nodes[:0]
	for i, f := range found {
		n := f.n
		// A handle's name, role and address are fixed, and read without a
		// lock: keep the handle (and its client) only where all still hold.
		if o, ok := old[n.name]; ok && o.port == n.port && o.role == n.role && o.addr == n.addr {
			n = o
		}
		n.See(f.state, partitioned[i])
		c.nodes = append(c.nodes, n)
	}
	return nil
}

// Forwards implements provider.Relayed.
func (c *cluster) Forwards() map[string]string {
	if c.relay == nil {
		return nil
	}
	return c.relay.Forwards()
}

// Bridged implements provider.Bridged: a lab reached directly publishes
// its ports on its bridge network's node addresses.
func (c *cluster) Bridged() bool { return c.relay == nil }

// Close implements provider.Cluster: it closes the nodes' engine clients.
func (c *cluster) Close() error {
	if c.closeReach != nil {
		c.closeReach()
	}
	c.mu.Lock()
	nodes := append([]*node(nil), c.nodes...)
	c.mu.Unlock()
	var errs []error
	for _, n := range nodes {
		n.clientMu.Lock()
		if n.client != nil {
			errs = append(errs, n.client.Close())
			n.client = nil
		}
		n.clientMu.Unlock()
	}
	return errors.Join(errs...)
}

func (n *node) Name() string { return n.name }
func (n *node) Role() string { return n.role }
func (n *node) Addr() string { return n.addr }

// DockerHost implements provider.Node: the engine is published on the engine
// host's 127.0.0.1, reached as the cluster's reach says.
func (n *node) DockerHost() string {
	target := n.engineTarget()
	if addr, err := n.c.reach(target); err == nil {
		return "tcp://" + addr
	}
	return "tcp://" + target
}

func (n *node) engineTarget() string { return fmt.Sprintf("127.0.0.1:%d", n.port) }

// Engine implements provider.Node: a client for the engine published on
// 127.0.0.1, made once.
func (n *node) Engine(ctx context.Context) (*client.Client, error) {
	n.clientMu.Lock()
	defer n.clientMu.Unlock()
	if n.client != nil {
		return n.client, nil
	}
	c, err := engine.Connect(n.DockerHost())
	if err != nil {
		return nil, err
	}
	n.client = c
	return c, nil
}

func (n *node) container() string { return containerName(n.c.name, n.name) }

// Apply implements provider.Node.
func (n *node) Apply(ctx context.Context, a provider.Action) error {
	host := n.c.p.host
	name := n.container()
	var err error
	switch a {
	case provider.Kill:
		_, err = host.ContainerKill(ctx, name, client.ContainerKillOptions{Signal: "KILL"})
	case provider.Stop:
		timeout := 10
		_, err = host.ContainerStop(ctx, name, client.ContainerStopOptions{Timeout: &timeout})
	case provider.Start:
		if _, err = host.ContainerStart(ctx, name, client.ContainerStartOptions{}); err == nil {
			err = n.waitEngine(ctx)
		}
	case provider.Pause:
		_, err = host.ContainerPause(ctx, name, client.ContainerPauseOptions{})
	case provider.Unpause:
		_, err = host.ContainerUnpause(ctx, name, client.ContainerUnpauseOptions{})
	case provider.Partition, provider.Heal:
		err = n.firewall(ctx, a == provider.Partition)
	default:
		err = fmt.Errorf("unknown action %q", a)
	}
	if err != nil {
		return fmt.Errorf("node %s %s: %w", a, n.name, err)
	}
	return nil
}

// waitEngine waits until the node's dockerd answers again.
func (n *node) waitEngine(ctx context.Context) error {
	return waitHTTP(ctx, n.c.reach, "the engine of node "+n.name, n.engineTarget(), "/_ping")
}

// firewall cuts the node off its peers, or heals it. The cut is made with
// iptables inside the node rather than by disconnecting its network, because
// the host reaches the node's engine through that same network: the node
// keeps talking to the host (the network's gateway) and to nobody else.
func (n *node) firewall(ctx context.Context, cut bool) error {
	host, lab := n.c.p.host, n.c.name
	script := common.HealScript
	if cut {
		ns, err := host.NetworkInspect(ctx, networkName(lab), client.NetworkInspectOptions{})
		if err != nil {
			return fmt.Errorf("inspecting network of lab %s: %w", lab, err)
		}
		if len(ns.Network.IPAM.Config) == 0 {
			return fmt.Errorf("network %s has no subnet", networkName(lab))
		}
		cfg := ns.Network.IPAM.Config[0]
		script = common.PartitionScript(partitionCut(cfg.Gateway.String(), cfg.Subnet.String()))
	}
	r, err := engine.Exec(ctx, host, n.container(), "sh", "-c", script)
	if err != nil {
		return err
	}
	return r.MustSucceed("iptables")
}

// partitionCut drops all traffic to and from the lab subnet, in and through
// the node (its tasks' traffic too), except the gateway's, which is how the
// host reaches the node's engine.
func partitionCut(gateway, subnet string) common.Cut {
	return common.Cut{
		Hooks: []string{"INPUT", "OUTPUT", "FORWARD"},
		Keep:  []string{gateway},
		Peers: []string{subnet},
	}
}

// Exec implements provider.Node: the command runs in the node container.
func (n *node) Exec(ctx context.Context, cmd ...string) (string, error) {
	r, err := engine.Exec(ctx, n.c.p.host, n.container(), cmd...)
	if err != nil {
		return "", err
	}
	if err := r.MustSucceed(strings.Join(cmd, " ")); err != nil {
		return r.Stdout, err
	}
	return r.Stdout, nil
}

// Logs implements provider.Node: the node container's output is its
// dockerd log.
func (n *node) Logs(ctx context.Context, w io.Writer) error {
	rc, err := n.c.p.host.ContainerLogs(ctx, n.container(), client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Timestamps: true})
	if err != nil {
		return fmt.Errorf("logs of node %s: %w", n.name, err)
	}
	defer rc.Close()
	_, err = stdcopy.StdCopy(w, w, rc)
	return err
}

var (
	_ provider.Relayed = (*cluster)(nil)
	_ provider.Bridged = (*cluster)(nil)
	_ provider.Cluster = (*cluster)(nil)
	_ provider.Node    = (*node)(nil)
)
