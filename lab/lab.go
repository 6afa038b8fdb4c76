// Package lab brings a topology up as a converged Docker Swarm, hands out
// clients for its engines, applies faults, and tears it down. It is what the
// CLI and the e2e suite both use.
package lab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"github.com/swarmlab/swarmlab/lab/images"
	"github.com/swarmlab/swarmlab/lab/internal/engine"
	"github.com/swarmlab/swarmlab/lab/provider"
	"github.com/swarmlab/swarmlab/lab/provider/common"
	"github.com/swarmlab/swarmlab/lab/provider/docker"
	sshprovider "github.com/swarmlab/swarmlab/lab/provider/ssh"
	"github.com/swarmlab/swarmlab/lab/swarm"
	"github.com/swarmlab/swarmlab/lab/topology"
)

// Ingress modes.
const (
	// RoutingMesh: the kernel has IPVS, so a port published in ingress
	// mode answers on every node.
	RoutingMesh = "routing-mesh"
	// EdgeProxy: no IPVS; publish an edge proxy in host mode and balance
	// with DNS discovery of tasks (endpoint_mode dnsrr).
	EdgeProxy = "edge-proxy"
)

// Options tune Up.
type Options struct {
	// Name overrides the topology's name.
	Name string
	// KeepOnFailure leaves a lab that failed to come up, for inspection.
	// A bring-up whose context was cancelled is removed all the same.
	KeepOnFailure bool
	// Out receives one status line per step; nil discards them.
	Out io.Writer
	// Progress receives the lines of the lab's own images being built,
	// where the host engine lacks some (a fresh machine: the first bring-up
	// builds them, Debian base images included); nil: os.Stderr.
	Progress io.Writer
	// Provider makes the lab's machines; nil: the one the topology names
	// (NewProvider), on Host.
	Provider provider.Provider
	// Host is this machine's engine, which builds the lab's images and
	// pushes them; nil: Host(ctx).
	Host client.APIClient
}

// Info is what preflight measured about the engines.
type Info struct {
	HostAPI    string            `json:"hostAPI"`
	HostCgroup string            `json:"hostCgroup"`
	NodeAPI    map[string]string `json:"nodeAPI"`
	// NodeEngine is each node's Docker engine version ("26.1.5+dfsg1").
	NodeEngine map[string]string `json:"nodeEngine"`
	NodeCgroup string            `json:"nodeCgroup"`
	Ingress    string            `json:"ingress"`
	// IngressWhy says how the ingress mode was decided.
	IngressWhy string `json:"ingressWhy"`
}

// Lab is a handle on a running lab: its nodes, its manager, its status,
// Down. What it deploys (stacks.go, images.go), the secrets it makes
// (secrets.go) and what it keeps on disk (record.go, StateDir) are in
// files of their own. Its fields are read through accessors: only Up and
// Open set them.
type Lab struct {
	name    string
	runID   string             // the bring-up that made it
	topo    *topology.Topology // for a lab opened by name, its record's
	cluster provider.Cluster   // nil until Up has made the machines
	prov    provider.Provider
	host    client.APIClient
	info    Info
	bringUp Timings
}

// Name is the lab's name.
func (l *Lab) Name() string { return l.name }

// RunID is the bring-up that made the lab.
func (l *Lab) RunID() string { return l.runID }

// Topology is the topology the lab was made from, under the lab's name
// (for a lab opened by name, its record's); never nil. It is the lab's:
// do not change it.
func (l *Lab) Topology() *topology.Topology { return l.topo }

// Cluster is the provider's handle on the lab's machines; nil until Up
// has made them.
func (l *Lab) Cluster() provider.Cluster { return l.cluster }

// Provider is the provider that made the lab's machines.
func (l *Lab) Provider() provider.Provider { return l.prov }

// Host is this machine's engine, through which the lab was made: it builds
// the lab's images and pushes them.
func (l *Lab) Host() client.APIClient { return l.host }

// Info is what preflight measured (for an opened lab: its ingress mode).
func (l *Lab) Info() Info { return l.info }

// BringUp is how long Up took, step by step.
func (l *Lab) BringUp() Timings { return l.bringUp }

// Timings records how long each step took.
type Timings struct {
	Total time.Duration
	Steps []StepTiming
	// Services is, per stack service, when its tasks went through their
	// states (the profile of the deploy step); empty without stacks.
	Services []ServiceTiming `json:"services,omitempty"`
}

// StepTiming is one step's duration.
type StepTiming struct {
	Name     string        `json:"name"`
	Duration time.Duration `json:"duration"`
	// Start is when the step began, from the start of Up. Steps that run
	// alongside others overlap them.
	Start time.Duration `json:"start,omitempty"`
	// Sub are the parts of the step (each image build and push, secret
	// generation, each stack's deploy call, ...), possibly overlapping.
	Sub []StepTiming `json:"sub,omitempty"`
}

// ServiceTiming is the bring-up profile of one stack service: every time
// is from the start of Up, 0 where the state was not seen.
type ServiceTiming struct {
	Name string `json:"name"` // "vote_db"
	// Created is when the service was created by the deploy call.
	Created time.Duration `json:"created"`
	// Running is when all its desired tasks were running (on a service
	// with a health check, healthy: swarm reports a task running only once
	// its first probe passed).
	Running time.Duration `json:"running"`
	Tasks   []TaskTiming  `json:"tasks"`
}

// TaskTiming is one task of a service, through swarm's task states and its
// container's health log. Times are from the start of Up; 0: not seen.
type TaskTiming struct {
	Node string `json:"node"`
	// Assigned: scheduled on Node. Preparing: pulling its image. Starting:
	// the image is there, the container is being created and started, and
	// (with a health check) waits for its first passing probe. Running:
	// swarm says it runs.
	Assigned  time.Duration `json:"assigned"`
	Preparing time.Duration `json:"preparing"`
	Starting  time.Duration `json:"starting"`
	Running   time.Duration `json:"running"`
	// Started is when its container's process started; FirstProbe when
	// the first health probe began, Healthy when the first probe passed
	// (0 without a health check).
	Started    time.Duration `json:"started"`
	FirstProbe time.Duration `json:"firstProbe,omitempty"`
	Healthy    time.Duration `json:"healthy,omitempty"`
	// FailedProbes counts the probes that failed before it was healthy.
	FailedProbes int `json:"failedProbes,omitempty"`
	// Attempt is 1 for the service's first task in this slot; more means
	// earlier tasks failed and swarm replaced them.
	Attempt int `json:"attempt,omitempty"`
}

// HostEnv names the variable that holds the host engine's address once
// `swarmlab env` has pointed DOCKER_HOST at a lab (empty: the default socket).
const HostEnv = "SWARMLAB_DOCKER_HOST"

// HostAddr is the host engine's address, "" for the default socket.
func HostAddr() string {
	if v, ok := os.LookupEnv(HostEnv); ok {
		return v
	}
	return os.Getenv("DOCKER_HOST")
}

// Host returns a client for the host engine (SWARMLAB_DOCKER_HOST if set,
// else DOCKER_HOST, else the default socket), checking that it answers.
func Host(ctx context.Context) (*client.Client, error) {
	var c *client.Client
	var err error
	if addr := HostAddr(); addr != "" {
		c, err = engine.Connect(addr)
	} else if _, ok := os.LookupEnv(HostEnv); ok {
		c, err = engine.Connect(client.DefaultDockerHost)
	} else {
		c, err = engine.FromEnv()
	}
	if err != nil {
		return nil, err
	}
	if _, err := engine.Ping(ctx, c); err != nil {
		c.Close()
		return nil, fmt.Errorf("%w (%w); run scripts/bootstrap, or set DOCKER_HOST", ErrNoEngine, err)
	}
	return c, nil
}

// ErrNoEngine is returned when this machine's Docker engine does not
// answer: trying again will not help until one is started.
var ErrNoEngine = errors.New("no Docker engine answers")

// NewProvider returns the provider for a topology's provider type (nil: docker):
// for docker, one that runs the node image of the topology's engine.
func NewProvider(ctx context.Context, host client.APIClient, t *topology.Topology) (provider.Provider, error) {
	kind, engine := topology.ProviderDocker, ""
	if t != nil {
		kind, engine = t.Provider.Type, t.Engine()
	}
	switch kind {
	case "", topology.ProviderDocker:
		node, err := images.NodeFor(engine) // the nodes' image, for the topology's engine

		if err != nil {
			return nil, err
		}
		return docker.New(host, node.Ref(), images.Registry().Ref()), nil
	case topology.ProviderSSH:
		return sshprovider.New(t, host, images.Registry().Ref()), nil
	default:
		return nil, fmt.Errorf("provider %q is not available in this version (available: docker, ssh)", kind)
	}
}

// opened is what opening a lab by name finds: its record (for a docker lab
// made before records, a minimal one: see unrecorded), the host engine it
// was made through, and its provider. close releases the host engine's
// client, where find made it.
type opened struct {
	rec   *Record
	host  client.APIClient
	p     provider.Provider
	close func()
}

// find reads the record of lab name and makes its provider, on the engine
// the record names; a lab with no record is a docker lab on the host engine
// (Host), found by its containers' labels. opts.Host and opts.Provider, if
// set, are used instead (see OpenWith).
func find(ctx context.Context, name string, opts Options) (*opened, error) {
	rec, err := readRecord(name)
	if err != nil {
		return nil, err
	}
	if rec == nil {
		rec = unrecorded(name)
	}
	o := &opened{rec: rec, host: opts.Host, p: opts.Provider, close: func() {}}
	if o.host == nil {
		var c *client.Client
		if rec.Access.Engine == HostAddr() {
			c, err = Host(ctx)
		} else {
			c, err = hostAt(ctx, rec.Access.Engine)
		}
		if err != nil {
			return nil, err
		}
		o.host, o.close = c, func() { c.Close() }
	}
	if o.p == nil {
		if o.p, err = NewProvider(ctx, o.host, rec.Topology); err != nil {
			o.close()
			return nil, err
		}
	}
	return o, nil
}

// hostAt returns a client for the engine at addr ("": the default socket),
// checking that it answers.
func hostAt(ctx context.Context, addr string) (*client.Client, error) {
	if addr == "" {
		addr = client.DefaultDockerHost
	}
	c, err := engine.Connect(addr)
	if err != nil {
		return nil, err
	}
	if _, err := engine.Ping(ctx, c); err != nil {
		c.Close()
		return nil, fmt.Errorf("%w at %s, where the lab was made (%w)", ErrNoEngine, addr, err)
	}
	return c, nil
}

// topologyOf returns the topology of an opened lab: its record's (rec);
// for a docker lab made before records, the file its containers name, else
// one made from its nodes (names and roles), so that a Lab always has one.
func topologyOf(rec *topology.Topology, c provider.Cluster) *topology.Topology {
	if rec != nil {
		return rec
	}
	if path := c.Topology(); path != "" {
		if t, _, err := topology.LoadFile(path); err == nil {
			t.Name = c.Name()
			return t
		}
	}
	t := &topology.Topology{APIVersion: topology.APIVersion, Kind: topology.Kind, Name: c.Name()}
	for _, n := range c.Nodes() {
		t.Nodes = append(t.Nodes, topology.Node{Name: n.Name(), Role: n.Role()})
	}
	t.Default()
	return t
}

func newRunID() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Open returns a handle on an existing lab, through its record (see
// Record), whatever its provider.
func Open(ctx context.Context, name string) (*Lab, error) {
	return OpenWith(ctx, name, Options{})
}

// OpenWith is Open, through opts.Provider and on opts.Host where they are
// set, instead of the provider the lab's record names and the engine it
// was made through: a test opens a lab of provider/fake so. The other
// options are not used.
func OpenWith(ctx context.Context, name string, opts Options) (*Lab, error) {
	o, err := find(ctx, name, opts)
	if err != nil {
		return nil, err
	}
	rec := *o.rec
	rec.Forwards, _ = readForwards(name)
	c, err := o.p.Open(ctx, rec)
	if err != nil {
		o.close()
		return nil, err
	}
	l := &Lab{name: name, runID: c.RunID(), topo: topologyOf(o.rec.Topology, c), cluster: c, prov: o.p, host: o.host}
	if mgr, _, err := l.Manager(ctx); err == nil {
		if sw, err := mgr.SwarmInspect(ctx, client.SwarmInspectOptions{}); err == nil {
			l.info.Ingress = sw.Swarm.Spec.Labels[common.LabelIngress]
		}
	}
	return l, nil
}

// Labs names the labs that exist: those with a record, and the docker labs
// made before records, found on the host engine by label.
func Labs(ctx context.Context) ([]string, error) {
	return LabsWith(ctx, Options{})
}

// LabsWith is Labs, asking opts.Provider (on opts.Host) instead of the
// docker provider where they are set (see OpenWith).
func LabsWith(ctx context.Context, opts Options) ([]string, error) {
	p := opts.Provider
	if p == nil {
		host := opts.Host
		if host == nil {
			c, err := Host(ctx)
			if err != nil {
				return nil, err
			}
			defer c.Close()
			host = c
		}
		var err error
		if p, err = NewProvider(ctx, host, nil); err != nil {
			return nil, err
		}
	}
	names, err := p.List(ctx)
	if err != nil {
		return nil, err
	}
	recorded, err := recordedLabs()
	for _, n := range recorded {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names, err
}

// Down removes the named lab, as Lab.Down does; removing a lab that does
// not exist is not an error.
func Down(ctx context.Context, name string) error {
	return DownWith(ctx, name, Options{})
}

// DownWith is Down, through opts.Provider and on opts.Host where they are
// set (see OpenWith).
func DownWith(ctx context.Context, name string, opts Options) error {
	o, err := find(ctx, name, opts)
	if err != nil {
		return err
	}
	defer o.close()
	var c provider.Cluster
	if o.p.Persistent() { // its swarm is on machines that stay: end it
		if c, err = o.p.Open(ctx, *o.rec); err != nil {
			c = nil // no handle: no swarm of it answers to end
		}
	}
	stopForwarder(name)
	err = teardown(ctx, o.p, c, name, "")
	if c != nil {
		c.Close()
	}
	if err != nil {
		return err // keep the record: it is how down finds the lab again
	}
	return removeState(name)
}

// DownAll removes every lab, and the blob caches they share (the
// registry's and the docker.io cache's).
func DownAll(ctx context.Context) ([]string, error) {
	names, err := Labs(ctx)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, n := range names {
		if err := Down(ctx, n); err != nil {
			errs = append(errs, err)
		}
	}
	host, err := Host(ctx)
	if err != nil {
		return names, errors.Join(append(errs, err)...)
	}
	errs = append(errs, docker.New(host, "", "").DeleteCache(ctx))
	return names, errors.Join(errs...)
}

// Down removes the lab: its swarm, which is the lab's (on machines that
// outlive it: see provider.Provider.Persistent), then what its provider
// made, then its state on this machine (its record, its secrets).
func (l *Lab) Down(ctx context.Context) error {
	stopForwarder(l.name)
	err := teardown(ctx, l.prov, l.cluster, l.name, "")
	l.closeCluster()
	if err != nil {
		return err // keep the record: it is how down finds the lab again
	}
	return removeState(l.name)
}

// Refresh re-reads the state of the lab's nodes from its provider.
func (l *Lab) Refresh(ctx context.Context) error {
	return l.cluster.Refresh(ctx)
}

// Node returns the handle on the named node.
func (l *Lab) Node(name string) (provider.Node, error) {
	return provider.Find(l.cluster, name)
}

// Client returns a client for the named node's engine; the lab's cluster
// keeps it until the lab is closed or removed.
func (l *Lab) Client(node string) (*client.Client, error) {
	n, err := l.Node(node)
	if err != nil {
		return nil, err
	}
	return n.Engine(context.Background())
}

// Close releases the clients and tunnels the lab holds; the lab itself
// stays up.
func (l *Lab) Close() error {
	if l.cluster == nil {
		return nil
	}
	return l.cluster.Close()
}

func (l *Lab) closeCluster() {
	if l.cluster != nil {
		l.cluster.Close()
	}
}

// Manager returns a client for a manager that can answer for the swarm,
// preferring the leader; it fails when no manager can (no quorum).
func (l *Lab) Manager(ctx context.Context) (*client.Client, string, error) {
	var errs []string
	var fallback *client.Client
	var fallbackName string
	for _, n := range l.cluster.Nodes() {
		if n.Role() != topology.RoleManager || !n.State().Running() {
			continue
		}
		c, err := n.Engine(ctx)
		if err != nil {
			return nil, "", err
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		nodes, err := c.NodeList(cctx, client.NodeListOptions{})
		cancel()
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", n.Name(), err))
			continue
		}
		for _, sn := range nodes.Items {
			if sn.Description.Hostname == n.Name() && sn.ManagerStatus != nil && sn.ManagerStatus.Leader {
				return c, n.Name(), nil
			}
		}
		if fallback == nil {
			fallback, fallbackName = c, n.Name()
		}
	}
	if fallback != nil {
		return fallback, fallbackName, nil
	}
	if len(errs) == 0 {
		errs = append(errs, "no manager node is running")
	}
	return nil, "", fmt.Errorf("no manager of lab %s can answer for the swarm: %s", l.name, strings.Join(errs, "; "))
}

// Do applies a fault or repair to a node.
func (l *Lab) Do(ctx context.Context, node string, a provider.Action) error {
	n, err := l.Node(node)
	if err != nil {
		return err
	}
	if err := n.Apply(ctx, a); err != nil {
		return err
	}
	return l.Refresh(ctx)
}

// Members describes the lab's nodes as the topology wants them in the swarm.
func (l *Lab) Members() ([]swarm.Member, error) {
	var ms []swarm.Member
	for _, tn := range l.topo.Nodes {
		n, err := l.Node(tn.Name)
		if err != nil {
			return nil, err
		}
		c, err := n.Engine(context.Background())
		if err != nil {
			return nil, err
		}
		ms = append(ms, swarm.Member{
			Name: n.Name(), Role: n.Role(), Addr: n.Addr(), Labels: tn.Labels,
			Availability: tn.Availability, Client: c,
		})
	}
	return ms, nil
}

// Status reads the lab's swarm status through a manager.
func (l *Lab) Status(ctx context.Context) (*swarm.Status, error) {
	mgr, _, err := l.Manager(ctx)
	if err != nil {
		return nil, err
	}
	return swarm.GetStatus(ctx, mgr)
}

// DockerHost is the DOCKER_HOST value that drives the lab's first manager.
func (l *Lab) DockerHost() string {
	for _, n := range l.cluster.Nodes() {
		if n.Role() == topology.RoleManager {
			return n.DockerHost()
		}
	}
	return ""
}
