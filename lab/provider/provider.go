// Package provider defines where a lab's nodes come from. A provider turns a
// topology into a Cluster: handles on its nodes, each with a reachable Docker
// engine (containers on this machine, or hosts over SSH). How this machine
// reaches an engine, the registry, or a port a node publishes is the
// provider's to say. Swarm formation, deployment, faults and specs only ever
// see the handles a provider hands back — never how they were made.
package provider

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"

	"github.com/moby/moby/client"

	"github.com/swarmlab/swarmlab/lab/topology"
)

// State is a machine's state as its provider sees it. Its values are the
// words the CLI prints ("running", "paused"...).
type State string

// States. A docker node is in one of its container's states; an ssh node
// is Running, Stopped (its host answers, its engine does not) or
// Unreachable (its host does not answer).
const (
	Created     State = "created"
	Running     State = "running"
	Paused      State = "paused"
	Restarting  State = "restarting"
	Removing    State = "removing"
	Exited      State = "exited"
	Dead        State = "dead"
	Stopped     State = "stopped"
	Unreachable State = "unreachable"
)

// Running reports whether the machine is up (its engine may still be starting).
func (s State) Running() bool { return s == Running }

// Node is a handle on one machine of a lab. Name, Role, Addr and
// DockerHost do not change; State and Partitioned are as of the cluster's
// last read (Open or Refresh: Apply does not read them again, lab.Do does).
type Node interface {
	Name() string
	Role() string // topology.RoleManager or topology.RoleWorker
	// Addr is the address other nodes reach this node at; swarm advertises it.
	Addr() string
	// DockerHost is the DOCKER_HOST value that drives the node's engine
	// from this machine, for people: "tcp://127.0.0.1:32771",
	// "ssh://admin@10.0.0.6:22".
	DockerHost() string
	State() State
	// Partitioned is true while the node is cut off from its peers.
	Partitioned() bool
	// Engine returns a client for the node's engine; the provider decides
	// how it is reached (a published port, an SSH tunnel) and keeps the
	// client until the cluster is closed.
	Engine(ctx context.Context) (*client.Client, error)
	// Exec runs a command on the node's machine (not in a swarm task) and
	// returns its stdout; a non-zero exit is an error quoting stderr.
	Exec(ctx context.Context, cmd ...string) (string, error)
	// Logs writes the node's engine log.
	Logs(ctx context.Context, w io.Writer) error
	// Apply applies a fault or repair and returns when the machine is in
	// the new state (for Start: when its engine answers).
	Apply(ctx context.Context, a Action) error
}

// NodeInfo is what a Node says about itself at one moment, with the field
// names `swarmlab status --json` prints.
type NodeInfo struct {
	Name string
	Role string
	// Engine is the node's DockerHost.
	Engine      string
	Addr        string
	State       State
	Partitioned bool
}

// Describe reads n's NodeInfo.
func Describe(n Node) NodeInfo {
	return NodeInfo{Name: n.Name(), Role: n.Role(), Engine: n.DockerHost(), Addr: n.Addr(), State: n.State(), Partitioned: n.Partitioned()}
}

// Registry is where the lab's images go, as the provider reaches it.
type Registry struct {
	// Push lists every host-side "host:port" an image must be pushed to:
	// one for a lab registry the nodes share (docker), one per node where
	// each has its own (ssh).
	Push []string
	// Query lists, in Push's order, where this process reaches the same
	// registries over HTTP, where that is not the Push address (a lab on
	// an engine elsewhere, reached through a relay). Empty: Push.
	Query []string
	// Pull is the "host:port" nodes pull from.
	Pull string
	// Mirror is true when nodes use the registry as their docker.io
	// mirror, so the lab pushes its standard images (redis, nginx...)
	// there; otherwise nodes pull those names themselves.
	Mirror bool
	// DockerIO is the lab's pull-through cache of docker.io, where it has
	// one (docker; see DockerIOCache).
	DockerIO DockerIOCache
}

// DockerIOCache is a registry in distribution's proxy mode: a pull-through
// cache of docker.io (or of a stand-in for it), which the nodes use as
// their second docker.io mirror, after the lab registry. A docker.io name
// the lab registry lacks is fetched from upstream by the cache, once, and
// served to every node from there.
type DockerIOCache struct {
	// Pull is the "host:port" nodes reach it at; empty: the lab has no
	// cache, and its nodes pull docker.io names the registry lacks
	// themselves.
	Pull string
	// Query is where this process asks it over HTTP (on the engine host's
	// loopback, or the relay to it).
	Query string
	// Upstream is the registry it caches: "https://registry-1.docker.io",
	// or what SWARMLAB_DOCKERIO_UPSTREAM names.
	Upstream string
}

// On reports whether the lab has a cache.
func (c DockerIOCache) On() bool { return c.Pull != "" }

// QueryAddrs is where this process asks the registries of Push over HTTP.
func (r Registry) QueryAddrs() []string {
	if len(r.Query) == len(r.Push) {
		return r.Query
	}
	return r.Push
}

// Cluster is a handle on a provisioned lab: its nodes, its registry, and
// how this machine reaches what the nodes publish. Close releases what the
// handle holds (clients, tunnels); the lab itself stays.
type Cluster interface {
	Name() string
	// RunID is the bring-up that made the lab.
	RunID() string
	// Topology is the path of the topology file the lab was made from.
	Topology() string
	// Nodes lists the lab's nodes in topology order.
	Nodes() []Node
	// Registry says where images are pushed and pulled.
	Registry() Registry
	// PublishedAddr is the "host:port" at which this machine reaches port
	// as published by the named node (in host mode, or by the routing mesh
	// on that node).
	PublishedAddr(node string, port uint16) (string, error)
	// Refresh reads every node's state again.
	Refresh(ctx context.Context) error
	Close() error
}

// Find returns the named node of c.
func Find(c Cluster, name string) (Node, error) {
	nodes := c.Nodes()
	for _, n := range nodes {
		if n.Name() == name {
			return n, nil
		}
	}
	names := make([]string, len(nodes))
	for i, n := range nodes {
		names[i] = n.Name()
	}
	return nil, fmt.Errorf("lab %s has no node %q (nodes: %v)", c.Name(), name, names)
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

// AddrAt is where a port that node publishes answers when the caller
// reaches the lab network directly: the node's address and the port. The
// docker, ssh and fake clusters all answer PublishedAddr so.
func AddrAt(c Cluster, node string, port uint16) (string, error) {
	n, err := Find(c, node)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(n.Addr(), strconv.Itoa(int(port))), nil
}

// ErrNotSupported is returned by Node.Apply for an action the provider cannot apply.
var ErrNotSupported = errors.New("not supported")

// ErrNotFound is returned when no lab of that name exists.
var ErrNotFound = errors.New("no such lab")

// ErrExists is returned by Create when the lab name is taken.
var ErrExists = errors.New("lab already exists")

// Provider makes and unmakes the machines of labs.
type Provider interface {
	// Name is the provider's topology name ("docker").
	Name() string
	// Create provisions every node of t with a running engine, and the
	// registry, and returns a handle on them. On error, whatever was made
	// is left for Delete.
	Create(ctx context.Context, t *topology.Topology, opts CreateOptions) (Cluster, error)
	// Open returns a handle on an existing lab from its record (docker:
	// the lab's containers, found by name; ssh: the hosts of the recorded
	// topology), or ErrNotFound.
	Open(ctx context.Context, rec Record) (Cluster, error)
	// List names the existing labs.
	List(ctx context.Context) ([]string, error)
	// Persistent reports whether the lab's machines outlive Delete (ssh:
	// hosts of the user's own, whose engines stay up). The lab then ends
	// its swarm on them (removes its services, makes them leave) before
	// Delete; where Delete removes the machines (docker), the swarm goes
	// with them.
	Persistent() bool
	// Delete removes everything the provider made for the lab (not the
	// swarm: see Persistent). Deleting a lab that does not exist is not an
	// error.
	Delete(ctx context.Context, name string) error
	// DeleteRun removes only what the bring-up run made, so that a failed
	// bring-up never touches another lab that holds the same name.
	DeleteRun(ctx context.Context, name, run string) error
}
