package ssh

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/moby/moby/client"

	"github.com/swarmlab/swarmlab/lab/provider"
	"github.com/swarmlab/swarmlab/lab/provider/common"
)

// cluster is a handle on an ssh lab: one node per host. This machine
// reaches each host's engine through its unix socket over SSH, its lab
// registry through a local port forwarded over SSH, and the ports a node
// publishes at the node's advertise address.
type cluster struct {
	p           *Provider
	topology    string
	recordedRun string     // the run the lab's record names, if any
	nodes       []*machine // fixed: one per host, in topology order

	mu   sync.Mutex
	run  string
	push []string
}

// machine is a handle on one host, as a node of the lab.
type machine struct {
	c *cluster
	h *host
	provider.Seen
}

func (c *cluster) Name() string     { return c.p.topo.Name }
func (c *cluster) Topology() string { return c.topology }

func (c *cluster) RunID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return cmp.Or(c.run, c.recordedRun)
}

// Registry implements provider.Cluster: each host has its own registry on
// its loopback, pushed to through a forwarded port; docker.io names are
// pulled by the hosts themselves.
func (c *cluster) Registry() provider.Registry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return provider.Registry{Push: append([]string(nil), c.push...), Pull: RegistryAddr}
}

func (c *cluster) Nodes() []provider.Node {
	return provider.Handles(c.nodes)
}

// PublishedAddr implements provider.Cluster: a port a node publishes
// answers at its advertise address.
func (c *cluster) PublishedAddr(name string, port uint16) (string, error) {
	return provider.AddrAt(c, name, port)
}

// Refresh implements provider.Cluster: it asks every host whether its
// engine answers and whether it is partitioned.
func (c *cluster) Refresh(ctx context.Context) error {
	runs := make([]string, len(c.nodes))
	pushes := make([]string, len(c.nodes))
	states := make([]provider.State, len(c.nodes))
	parts := make([]bool, len(c.nodes))
	err := c.p.each(func(h *host) error {
		i := slices.Index(c.p.hosts, h) // c.nodes[i] is hosts[i]
		addr, err := h.forward(RegistryAddr)
		if err != nil {
			return err
		}
		pushes[i] = addr
		states[i], runs[i] = c.p.state(ctx, h)
		if states[i] != provider.Unreachable {
			parts[i] = h.partitioned(ctx)
		}
		return nil
	})
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.run = cmp.Or(runs...)
	c.push = pushes
	for i, n := range c.nodes {
		n.See(states[i], parts[i])
	}
	return nil
}

// Close implements provider.Cluster: it ends every SSH connection and port
// forward.
func (c *cluster) Close() error {
	c.p.closeHosts()
	return nil
}

func (n *machine) Name() string { return n.h.node.Name }
func (n *machine) Role() string { return n.h.node.Role }
func (n *machine) Addr() string { return n.h.node.SSH.AdvertiseAddr }

func (n *machine) DockerHost() string { return fmt.Sprintf("ssh://%s@%s", n.h.node.SSH.User, n.h.addr) }

// Engine implements provider.Node: a client for the host's engine, over
// SSH, kept by the host.
func (n *machine) Engine(ctx context.Context) (*client.Client, error) { return n.h.Engine() }

// Apply implements provider.Node.
func (n *machine) Apply(ctx context.Context, a provider.Action) error {
	h := n.h
	var err error
	switch a {
	case provider.Kill:
		_, err = h.mustRun(ctx, "killing the Docker engine", killScript)
	case provider.Stop:
		_, err = h.mustRun(ctx, "stopping the Docker engine", stopScript)
	case provider.Start:
		if _, err = h.mustRun(ctx, "starting the Docker engine", startScript); err == nil {
			err = waitEngine(ctx, h)
		}
	case provider.Partition:
		_, err = h.mustRun(ctx, "adding partition rules", partitionScript(n.c.p.peers(h)))
	case provider.Heal:
		_, err = h.mustRun(ctx, "removing partition rules", healScript)
	case provider.Pause, provider.Unpause:
		err = fmt.Errorf("%w by the ssh provider (a host's engine can be killed, stopped, started, partitioned and healed)", provider.ErrNotSupported)
	default:
		err = fmt.Errorf("unknown action %q", a)
	}
	if err != nil {
		return fmt.Errorf("node %s %s: %w", a, n.Name(), err)
	}
	return nil
}

// Exec implements provider.Node: the command runs on the host, as the SSH
// user.
func (n *machine) Exec(ctx context.Context, cmd ...string) (string, error) {
	return n.h.mustRun(ctx, strings.Join(cmd, " "), common.CommandLine(cmd))
}

// Logs implements provider.Node: the engine's log from the systemd
// journal, or /var/log/docker.log without systemd.
func (n *machine) Logs(ctx context.Context, w io.Writer) error {
	out, err := n.h.mustRun(ctx, "reading the engine log", logsScript)
	if err != nil {
		return err
	}
	_, err = io.WriteString(w, out)
	return err
}

var (
	_ provider.Cluster = (*cluster)(nil)
	_ provider.Node    = (*machine)(nil)
)
