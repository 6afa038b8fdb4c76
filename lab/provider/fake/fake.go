// Package fake is a provider with no machines behind it, for unit tests of
// what sits on the provider interface: its nodes are records that Apply
// changes as the real providers' machines would, and that say which actions
// and commands they were given.
package fake

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/moby/moby/client"

	"github.com/swarmlab/swarmlab/lab/provider"
	"github.com/swarmlab/swarmlab/lab/topology"
)

// Provider keeps its labs in memory.
type Provider struct {
	mu   sync.Mutex
	labs map[string]*Cluster
	// CreateErr, if set, is what Create returns (with the cluster made so far).
	CreateErr error
	// OnCreate, if set, is called by Create once the cluster is made,
	// before it returns: a test may cancel, wait or panic there.
	OnCreate func(ctx context.Context, c *Cluster)
	// Deleted records every Delete and DeleteRun, as "name" or "name/run".
	Deleted []string
	// KeepsMachines is what Persistent reports.
	KeepsMachines bool
	// Opened records the record of every Open.
	Opened []provider.Record
}

// New returns a provider with no labs.
func New() *Provider { return &Provider{labs: map[string]*Cluster{}} }

// Name implements provider.Provider.
func (p *Provider) Name() string { return "fake" }

// Create implements provider.Provider: every node of t, running, at
// 10.0.0.(10+i).
func (p *Provider) Create(ctx context.Context, t *topology.Topology, opts provider.CreateOptions) (provider.Cluster, error) {
	p.mu.Lock()
	if _, ok := p.labs[t.Name]; ok {
		p.mu.Unlock()
		return nil, fmt.Errorf("%w: %s", provider.ErrExists, t.Name)
	}
	c := NewCluster(t.Name, opts.RunID)
	c.TopologyPath = t.Source()
	for i, n := range t.Nodes {
		c.Add(n.Name, n.Role, fmt.Sprintf("10.0.0.%d", 10+i))
	}
	p.labs[t.Name] = c
	on, err := p.OnCreate, p.CreateErr
	p.mu.Unlock()
	if on != nil {
		on(ctx, c)
	}
	return c, err
}

// Add makes c one of its labs, as Create would have, under c's name: a
// test gives it nodes at addresses of its own choosing.
func (p *Provider) Add(c *Cluster) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.labs[c.LabName] = c
}

// Lab returns the named lab's cluster, or nil.
func (p *Provider) Lab(name string) *Cluster {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.labs[name]
}

// Open implements provider.Provider: the lab of the record's name; its
// records are kept in Opened.
func (p *Provider) Open(ctx context.Context, rec provider.Record) (provider.Cluster, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.Opened = append(p.Opened, rec)
	c, ok := p.labs[rec.Name]
	if !ok {
		return nil, fmt.Errorf("%w %q", provider.ErrNotFound, rec.Name)
	}
	return c, nil
}

// List implements provider.Provider.
func (p *Provider) List(ctx context.Context) ([]string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for n := range p.labs {
		out = append(out, n)
	}
	return out, nil
}

// Persistent implements provider.Provider.
func (p *Provider) Persistent() bool { return p.KeepsMachines }

// Delete implements provider.Provider.
func (p *Provider) Delete(ctx context.Context, name string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.labs[name]; ok {
		c.remove()
	}
	delete(p.labs, name)
	p.Deleted = append(p.Deleted, name)
	return nil
}

// DeleteRun implements provider.Provider.
func (p *Provider) DeleteRun(ctx context.Context, name, run string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.labs[name]; ok && c.Run == run {
		c.remove()
		delete(p.labs, name)
	}
	p.Deleted = append(p.Deleted, name+"/"+run)
	return nil
}

// Cluster is a lab of fake nodes.
type Cluster struct {
	LabName      string
	Run          string
	TopologyPath string
	Reg          provider.Registry
	// Bridge is what Bridged reports: whether the lab's forwarder serves
	// its published ports on 127.0.0.1 (as for a docker lab reached
	// directly).
	Bridge bool

	mu     sync.Mutex
	nodes  []*Node
	closed bool
	gone   bool // deleted by its provider
}

// NewCluster returns a lab with no nodes and a registry at
// 127.0.0.1:5000 that the nodes pull from as registry:5000.
func NewCluster(name, run string) *Cluster {
	return &Cluster{LabName: name, Run: run, Reg: provider.Registry{Push: []string{"127.0.0.1:5000"}, Pull: "registry:5000", Mirror: true}}
}

// Add adds a running node.
func (c *Cluster) Add(name, role, addr string) *Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := &Node{c: c, name: name, role: role, addr: addr}
	n.See(provider.Running, false)
	c.nodes = append(c.nodes, n)
	return n
}

func (c *Cluster) Name() string                { return c.LabName }
func (c *Cluster) RunID() string               { return c.Run }
func (c *Cluster) Topology() string            { return c.TopologyPath }
func (c *Cluster) Registry() provider.Registry { return c.Reg }

func (c *Cluster) Nodes() []provider.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return provider.Handles(c.nodes)
}

// PublishedAddr implements provider.Cluster: the node's address.
func (c *Cluster) PublishedAddr(name string, port uint16) (string, error) {
	return provider.AddrAt(c, name, port)
}

// Bridged implements provider.Bridged.
func (c *Cluster) Bridged() bool { return c.Bridge }

// Refresh implements provider.Cluster: the records are always current;
// a handle on a lab its provider deleted finds no lab, as a docker one
// would.
func (c *Cluster) Refresh(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gone {
		return fmt.Errorf("%w %q", provider.ErrNotFound, c.LabName)
	}
	return nil
}

func (c *Cluster) remove() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gone = true
}

// Close implements provider.Cluster.
func (c *Cluster) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}

// Closed says whether Close was called.
func (c *Cluster) Closed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// Node is a record of a machine.
type Node struct {
	c                *Cluster
	name, role, addr string
	provider.Seen

	applied []provider.Action
	execs   [][]string

	// ExecFunc, if set, answers Exec; otherwise Exec returns "".
	ExecFunc func(cmd []string) (string, error)
	// EngineClient is what Engine returns; nil: an error.
	EngineClient *client.Client
}

func (n *Node) Name() string       { return n.name }
func (n *Node) Role() string       { return n.role }
func (n *Node) Addr() string       { return n.addr }
func (n *Node) DockerHost() string { return "fake://" + n.name }

// SetState sets what State and Partitioned report.
func (n *Node) SetState(s provider.State, partitioned bool) { n.See(s, partitioned) }

// Engine implements provider.Node.
func (n *Node) Engine(ctx context.Context) (*client.Client, error) {
	if n.EngineClient == nil {
		return nil, errors.New("fake node " + n.name + " has no engine")
	}
	return n.EngineClient, nil
}

// Exec implements provider.Node, recording cmd.
func (n *Node) Exec(ctx context.Context, cmd ...string) (string, error) {
	n.c.mu.Lock()
	n.execs = append(n.execs, cmd)
	fn := n.ExecFunc
	n.c.mu.Unlock()
	if fn != nil {
		return fn(cmd)
	}
	return "", nil
}

// Execs returns the commands Exec was given.
func (n *Node) Execs() [][]string {
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	return append([][]string(nil), n.execs...)
}

// Logs implements provider.Node.
func (n *Node) Logs(ctx context.Context, w io.Writer) error {
	_, err := fmt.Fprintf(w, "fake engine log of %s\n", n.name)
	return err
}

// Apply implements provider.Node: it changes the record as the action
// would change a docker node.
func (n *Node) Apply(ctx context.Context, a provider.Action) error {
	n.c.mu.Lock()
	n.applied = append(n.applied, a)
	n.c.mu.Unlock()
	state, partitioned := n.State(), n.Partitioned()
	switch a {
	case provider.Kill, provider.Stop:
		state = provider.Exited
	case provider.Start, provider.Unpause:
		state = provider.Running
	case provider.Pause:
		state = provider.Paused
	case provider.Partition:
		partitioned = true
	case provider.Heal:
		partitioned = false
	default:
		return fmt.Errorf("unknown action %q", a)
	}
	n.See(state, partitioned)
	return nil
}

// Applied returns the actions Apply was given.
func (n *Node) Applied() []provider.Action {
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	return append([]provider.Action(nil), n.applied...)
}

var (
	_ provider.Provider = (*Provider)(nil)
	_ provider.Cluster  = (*Cluster)(nil)
	_ provider.Bridged  = (*Cluster)(nil)
	_ provider.Node     = (*Node)(nil)
)
