// Package provider defines where a lab's nodes come from. A provider turns a
// topology into reachable Docker engines (containers on this machine now;
// remote hosts later). Swarm formation, deployment, faults and specs only ever
// see the engines a provider hands back — never how they were made.
package provider

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/moby/moby/client"

	"github.com/swarmlab/swarmlab/lab/topology"
)

// Node is one machine of a lab, as its provider sees it.
type Node struct {
	Name string
	Role string // topology.RoleManager or topology.RoleWorker
	// Engine is the address the host uses to reach the node's Docker
	// engine, e.g. "tcp://127.0.0.1:32771".
	Engine string
	// Addr is the address other nodes reach this node at; swarm advertises it.
	Addr string
	// State is the provider's view of the machine: running, paused, exited...
	State string
	// Partitioned is true while the node is cut off from its peers.
	Partitioned bool
}

// Running reports whether the machine is up (its engine may still be starting).
func (n Node) Running() bool { return n.State == "running" }

// Registry is the lab's image registry.
type Registry struct {
	// Push is the host-side "host:port" the host engine pushes to.
	Push string
	// PushAll, when set, lists every host-side "host:port" an image must
	// be pushed to (one registry per node, as in the ssh provider); it
	// includes Push.
	PushAll []string
	// Pull is the "host:port" nodes pull from.
	Pull string
	// Mirror is true when nodes use the registry as their docker.io
	// mirror, so the lab pushes its standard images (redis, nginx...)
	// there; otherwise nodes pull those names themselves.
	Mirror bool
}

// Cluster is a provisioned lab: its nodes and registry.
type Cluster struct {
	Name     string
	RunID    string
	Topology string // path of the topology file it was made from
	Nodes    []Node
	Registry Registry
}

// Node returns the named node.
func (c *Cluster) Node(name string) (Node, error) {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n, nil
		}
	}
	names := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		names[i] = n.Name
	}
	return Node{}, fmt.Errorf("lab %s has no node %q (nodes: %v)", c.Name, name, names)
}

// Action is a fault or repair applied to one node.
type Action string

const (
	Kill      Action = "kill"      // the machine dies at once
	Stop      Action = "stop"      // the machine shuts down cleanly
	Start     Action = "start"     // a killed or stopped machine boots again
	Pause     Action = "pause"     // the machine freezes
	Unpause   Action = "unpause"   // a frozen machine resumes
	Partition Action = "partition" // the machine is cut off from its peers
	Heal      Action = "heal"      // a partition ends
)

// Actions lists every action, in the order the CLI documents them.
var Actions = []Action{Kill, Stop, Start, Pause, Unpause, Partition, Heal}

// ParseAction checks a user-given action name.
func ParseAction(s string) (Action, error) {
	for _, a := range Actions {
		if string(a) == s {
			return a, nil
		}
	}
	return "", fmt.Errorf("unknown node action %q: want one of %v", s, Actions)
}

// CreateOptions tune Create.
type CreateOptions struct {
	// RunID tags everything this bring-up creates.
	RunID string
	// Logf reports progress detail; may be nil.
	Logf func(format string, args ...any)
}

// Targets lists every host-side address an image must be pushed to.
func (r Registry) Targets() []string {
	if len(r.PushAll) > 0 {
		return r.PushAll
	}
	return []string{r.Push}
}

// ErrNotSupported is returned by Do for an action the provider cannot apply.
var ErrNotSupported = errors.New("not supported")

// EngineClienter is implemented by providers whose node engines are not
// reached by dialing Node.Engine directly (ssh: through an SSH tunnel).
type EngineClienter interface {
	// EngineClient returns a client for the named node's engine.
	EngineClient(node string) (*client.Client, error)
}

// ErrNotFound is returned when no lab of that name exists.
var ErrNotFound = errors.New("no such lab")

// ErrExists is returned by Create when the lab name is taken.
var ErrExists = errors.New("lab already exists")

// Provider makes and unmakes the machines of labs.
type Provider interface {
	// Name is the provider's topology name ("docker").
	Name() string
	// Create provisions every node of t with a running engine, and the
	// registry. On error, whatever was made is left for Delete.
	Create(ctx context.Context, t *topology.Topology, opts CreateOptions) (*Cluster, error)
	// Get describes an existing lab, or returns ErrNotFound.
	Get(ctx context.Context, name string) (*Cluster, error)
	// List names the existing labs.
	List(ctx context.Context) ([]string, error)
	// Delete removes everything of the lab. Deleting a lab that does not
	// exist is not an error.
	Delete(ctx context.Context, name string) error
	// DeleteRun removes only what the bring-up run made, so that a failed
	// bring-up never touches another lab that holds the same name.
	DeleteRun(ctx context.Context, name, run string) error
	// Do applies a fault or repair to one node and returns when the
	// machine is in the new state (for Start: when its engine answers).
	Do(ctx context.Context, lab, node string, a Action) error
	// Exec runs a command on the node's machine (not in a swarm task).
	Exec(ctx context.Context, lab, node string, cmd ...string) (string, error)
	// Logs writes the node's engine log.
	Logs(ctx context.Context, lab, node string, w io.Writer) error
}
