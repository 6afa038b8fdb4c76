// Package docker provides lab nodes as Docker-in-Docker containers on one
// engine: each node is a container running its own dockerd, on a bridge
// network of its own, with its engine published on 127.0.0.1 only.
package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	tcnetwork "github.com/testcontainers/testcontainers-go/network"

	"github.com/swarmlab/swarmlab/lab/engine"
	"github.com/swarmlab/swarmlab/lab/provider"
	"github.com/swarmlab/swarmlab/lab/topology"
	"github.com/swarmlab/swarmlab/lab/wait"
)

const (
	enginePort   = "2375/tcp"
	registryPort = "5000/tcp"
	// RegistryAlias is the name nodes reach the lab registry by.
	RegistryAlias = "registry"
	// CacheVolume holds the registry's blobs across labs.
	CacheVolume = "swarmlab-registry-cache"
	// EngineTimeout bounds how long a node's dockerd may take to answer
	// after its container starts (measured: ~2 s idle, more under load).
	EngineTimeout = 90 * time.Second
)

func init() {
	// testcontainers prints a banner on its first call; the lab reports
	// its own progress.
	if os.Getenv("SWARMLAB_DEBUG") == "" {
		tclog.SetDefault(tclog.NewNoopLogger())
	}
	// Ryuk (testcontainers' reaper) is an image that cannot be pulled
	// offline; the lab sweeps its own resources by label instead. The
	// setting is read once, lazily, so it must be in place before the first
	// testcontainers call.
	if os.Getenv("TESTCONTAINERS_RYUK_DISABLED") == "" {
		os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	}
}

// Provider makes lab nodes as containers on the host engine.
type Provider struct {
	host          client.APIClient
	nodeImage     string
	registryImage string

	mu         sync.Mutex
	privileged *bool // nil until the first node says whether --privileged works
}

// New returns a provider that runs nodes from nodeImage and the registry from
// registryImage on the engine host talks to.
func New(host client.APIClient, nodeImage, registryImage string) *Provider {
	return &Provider{host: host, nodeImage: nodeImage, registryImage: registryImage}
}

// Name implements provider.Provider.
func (p *Provider) Name() string { return "docker" }

func networkName(lab string) string         { return "swarmlab-" + lab }
func containerName(lab, node string) string { return "swarmlab-" + lab + "-" + node }
func registryName(lab string) string        { return "swarmlab-" + lab + "-registry" }

// Create implements provider.Provider.
func (p *Provider) Create(ctx context.Context, t *topology.Topology, opts provider.CreateOptions) (*provider.Cluster, error) {
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if err := p.checkFree(ctx, t.Name); err != nil {
		return nil, err
	}
	src, _ := filepath.Abs(t.Source())
	base := map[string]string{LabelLab: t.Name, LabelRun: opts.RunID, LabelTopology: src}

	subnet, err := p.createNetwork(ctx, t, base)
	if err != nil {
		return nil, err
	}
	logf("network %s on %s", networkName(t.Name), subnet)
	gateway := subnet.Addr().Next()
	addr := func(i int) netip.Addr { // .2 is the registry, nodes from .10
		a := gateway
		for range i {
			a = a.Next()
		}
		return a
	}

	var wg sync.WaitGroup
	errs := make([]error, len(t.Nodes)+1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		errs[0] = p.startRegistry(ctx, t.Name, addr(1), base)
	}()
	for i, n := range t.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i+1] = p.startNode(ctx, t.Name, i, n, addr(9+i), base)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return p.Get(ctx, t.Name)
}

// checkFree refuses a name that any labelled resource already uses.
func (p *Provider) checkFree(ctx context.Context, name string) error {
	cs, err := p.host.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: labFilter(name)})
	if err != nil {
		return fmt.Errorf("listing containers of lab %s: %w", name, err)
	}
	ns, err := p.host.NetworkList(ctx, client.NetworkListOptions{Filters: labFilter(name)})
	if err != nil {
		return fmt.Errorf("listing networks of lab %s: %w", name, err)
	}
	if len(cs.Items) > 0 || len(ns.Items) > 0 {
		run := ""
		if len(cs.Items) > 0 {
			run = cs.Items[0].Labels[LabelRun]
		} else {
			run = ns.Items[0].Labels[LabelRun]
		}
		return fmt.Errorf("%w: a lab named %q is already running (run %s); use another --name, or remove it with: swarmlab down %s",
			provider.ErrExists, name, run, name)
	}
	return nil
}

// createNetwork makes the lab's bridge network on the topology's subnet, or
// on the first free 10.99.N.0/24.
func (p *Provider) createNetwork(ctx context.Context, t *topology.Topology, base map[string]string) (netip.Prefix, error) {
	labels := withLabels(base, map[string]string{LabelComponent: "network"})
	try := func(subnet netip.Prefix) error {
		gw := subnet.Addr().Next()
		_, err := p.host.NetworkCreate(ctx, networkName(t.Name), client.NetworkCreateOptions{
			Driver: "bridge",
			Labels: labels,
			IPAM:   &network.IPAM{Config: []network.IPAMConfig{{Subnet: subnet, Gateway: gw}}},
		})
		return err
	}
	if t.Swarm.Subnet != "" {
		subnet, err := netip.ParsePrefix(t.Swarm.Subnet)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("subnet %q: %w", t.Swarm.Subnet, err)
		}
		subnet = subnet.Masked()
		if err := try(subnet); err != nil {
			return netip.Prefix{}, fmt.Errorf("creating network %s on %s: %w", networkName(t.Name), subnet, err)
		}
		return subnet, nil
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		used, err := p.usedSubnets(ctx)
		if err != nil {
			return netip.Prefix{}, err
		}
		subnet, ok := freeSubnet(used)
		if !ok {
			return netip.Prefix{}, errors.New("no free /24 left in 10.99.0.0/16 for a lab network; set swarm.subnet in the topology")
		}
		if lastErr = try(subnet); lastErr == nil {
			return subnet, nil
		}
		// Another lab may have taken the same subnet a moment ago: look again.
		if !strings.Contains(lastErr.Error(), "overlap") {
			break
		}
	}
	return netip.Prefix{}, fmt.Errorf("creating network %s: %w", networkName(t.Name), lastErr)
}

func (p *Provider) usedSubnets(ctx context.Context) ([]netip.Prefix, error) {
	nets, err := p.host.NetworkList(ctx, client.NetworkListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing networks: %w", err)
	}
	var used []netip.Prefix
	for _, n := range nets.Items {
		for _, c := range n.IPAM.Config {
			if c.Subnet.IsValid() {
				used = append(used, c.Subnet)
			}
		}
	}
	return used, nil
}

// freeSubnet picks the first 10.99.N.0/24 that overlaps none of used.
func freeSubnet(used []netip.Prefix) (netip.Prefix, bool) {
	for n := 0; n < 256; n++ {
		cand := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 99, byte(n), 0}), 24)
		free := true
		for _, u := range used {
			if u.Overlaps(cand) {
				free = false
				break
			}
		}
		if free {
			return cand, true
		}
	}
	return netip.Prefix{}, false
}

func (p *Provider) startRegistry(ctx context.Context, lab string, ip netip.Addr, base map[string]string) error {
	if err := p.ensureCacheVolume(ctx); err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	_, err = testcontainers.Run(ctx, p.registryImage,
		testcontainers.WithName(registryName(lab)),
		testcontainers.WithLabels(withLabels(base, map[string]string{LabelComponent: componentRegistry})),
		testcontainers.WithExposedPorts(registryPort),
		tcnetwork.WithNetworkName([]string{RegistryAlias}, networkName(lab)),
		staticIP(networkName(lab), ip),
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			hc.PortBindings = loopbackPort(registryPort, port)
			hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeVolume, Source: CacheVolume, Target: "/var/lib/docker-registry"})
		}),
		testcontainers.WithLogger(tclog.NewNoopLogger()),
	)
	if err != nil {
		return fmt.Errorf("starting registry of lab %s: %w", lab, err)
	}
	return waitHTTP(ctx, "the registry of lab "+lab, fmt.Sprintf("http://127.0.0.1:%d/v2/", port))
}

func (p *Provider) ensureCacheVolume(ctx context.Context) error {
	_, err := p.host.VolumeCreate(ctx, client.VolumeCreateOptions{
		Name: CacheVolume, Labels: map[string]string{LabelCache: "registry"},
	})
	if err != nil {
		return fmt.Errorf("creating volume %s: %w", CacheVolume, err)
	}
	return nil
}

func (p *Provider) startNode(ctx context.Context, lab string, index int, n topology.Node, ip netip.Addr, base map[string]string) error {
	name := containerName(lab, n.Name)
	labels := withLabels(base, map[string]string{
		LabelComponent: componentNode, LabelNode: n.Name, LabelRole: n.Role,
		LabelIndex: strconv.Itoa(index), LabelAddr: ip.String(),
	})
	vol := name + "-docker"
	if _, err := p.host.VolumeCreate(ctx, client.VolumeCreateOptions{
		Name: vol, Labels: withLabels(base, map[string]string{LabelComponent: "volume", LabelNode: n.Name}),
	}); err != nil {
		return fmt.Errorf("node %s: creating volume %s: %w", n.Name, vol, err)
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	run := func(privileged bool) error {
		_, err := testcontainers.Run(ctx, p.nodeImage,
			testcontainers.WithName(name),
			testcontainers.WithLabels(labels),
			testcontainers.WithEnv(map[string]string{"SWARMLAB_REGISTRY": RegistryAlias + ":5000"}),
			testcontainers.WithExposedPorts(enginePort),
			testcontainers.WithConfigModifier(func(c *container.Config) { c.Hostname = n.Name }),
			// Its name, and aliases from its labels (aliases.go).
			tcnetwork.WithNetworkName(nodeAliases(n.Name, n.Labels), networkName(lab)),
			staticIP(networkName(lab), ip),
			testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
				NodeHostConfig(hc, privileged, vol)
				hc.PortBindings = loopbackPort(enginePort, port)
			}),
			testcontainers.WithLogger(tclog.NewNoopLogger()),
		)
		if err != nil {
			return fmt.Errorf("starting node %s: %w", n.Name, err)
		}
		return waitHTTP(ctx, "the engine of node "+n.Name, fmt.Sprintf("http://127.0.0.1:%d/_ping", port))
	}
	priv := p.tryPrivileged(ctx)
	err = run(priv)
	if priv && err != nil && strings.Contains(err.Error(), "operation not permitted") {
		// This host refuses --privileged (measured: it lacks
		// CAP_SYS_RESOURCE); the explicit capability set works.
		p.setPrivileged(false)
		if rmErr := p.removeContainer(ctx, name); rmErr != nil {
			return errors.Join(err, rmErr)
		}
		err = run(false)
	} else if priv && err == nil {
		p.setPrivileged(true)
	}
	return err
}

// tryPrivileged says whether to ask for --privileged. SWARMLAB_NODE_SECURITY
// (privileged|caps) decides if set. Otherwise cgroup v2 hosts (Docker
// Desktop, recent distributions) get --privileged, the usual way to nest
// dockerd there, falling back to capabilities if refused; cgroup v1 hosts
// get the capability set measured to work where --privileged fails.
func (p *Provider) tryPrivileged(ctx context.Context) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.privileged != nil {
		return *p.privileged
	}
	switch os.Getenv("SWARMLAB_NODE_SECURITY") {
	case "privileged":
		return true
	case "caps":
		return false
	}
	info, err := p.host.Info(ctx, client.InfoOptions{})
	return err == nil && info.Info.CgroupVersion == "2"
}

func (p *Provider) setPrivileged(v bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.privileged = &v
}

// NodeHostConfig is what a node's dockerd needs: full capabilities (or
// --privileged), no seccomp/apparmor confinement, writable cgroups, every
// device, tmpfs /run (a stale pid file there would stop a restarted node's
// dockerd from starting) and a volume for /var/lib/docker (overlay2 does not
// work on overlay2).
func NodeHostConfig(hc *container.HostConfig, privileged bool, volume string) {
	hc.Privileged = privileged
	if !privileged {
		hc.CapAdd = []string{"ALL"}
		hc.CapDrop = []string{"SYS_RESOURCE"}
		hc.SecurityOpt = []string{"seccomp=unconfined", "apparmor=unconfined"}
		// systempaths=unconfined, which the docker CLI sends as empty lists.
		hc.MaskedPaths, hc.ReadonlyPaths = []string{}, []string{}
		hc.DeviceCgroupRules = []string{"a *:* rwm"}
	}
	if privileged {
		hc.CgroupnsMode = container.CgroupnsModePrivate
	} else {
		hc.Binds = append(hc.Binds, "/sys/fs/cgroup:/sys/fs/cgroup:rw")
	}
	hc.Tmpfs = map[string]string{"/run": "", "/var/run": ""}
	hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeVolume, Source: volume, Target: "/var/lib/docker"})
}

func staticIP(net string, ip netip.Addr) testcontainers.CustomizeRequestOption {
	return testcontainers.WithEndpointSettingsModifier(func(m map[string]*network.EndpointSettings) {
		if m[net] == nil {
			m[net] = &network.EndpointSettings{}
		}
		m[net].IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: ip}
	})
}

// loopbackPort publishes port on 127.0.0.1 only, at a fixed host port so
// that it survives the container being killed and started again.
func loopbackPort(port string, hostPort int) network.PortMap {
	return network.PortMap{network.MustParsePort(port): {{
		HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: strconv.Itoa(hostPort),
	}}}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port on 127.0.0.1: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func withLabels(base, extra map[string]string) map[string]string {
	out := make(map[string]string, len(base)+len(extra))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range extra {
		out[k] = v
	}
	return out
}

// Get implements provider.Provider.
func (p *Provider) Get(ctx context.Context, name string) (*provider.Cluster, error) {
	cs, err := p.host.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: labFilter(name)})
	if err != nil {
		return nil, fmt.Errorf("listing containers of lab %s: %w", name, err)
	}
	if len(cs.Items) == 0 {
		return nil, fmt.Errorf("%w %q (see swarmlab status for the labs that exist)", provider.ErrNotFound, name)
	}
	c := &provider.Cluster{Name: name}
	type indexed struct {
		i int
		n provider.Node
	}
	var nodes []indexed
	for _, s := range cs.Items {
		c.RunID = s.Labels[LabelRun]
		c.Topology = s.Labels[LabelTopology]
		switch s.Labels[LabelComponent] {
		case componentRegistry:
			if hp := hostPort(s.Ports, 5000); hp != 0 {
				c.Registry.Push = fmt.Sprintf("127.0.0.1:%d", hp)
			}
			c.Registry.Pull = RegistryAlias + ":5000"
			c.Registry.Mirror = true
		case componentNode:
			n := provider.Node{
				Name: s.Labels[LabelNode], Role: s.Labels[LabelRole], Addr: s.Labels[LabelAddr],
				State: string(s.State),
			}
			port, err := p.enginePort(ctx, s.ID)
			if err != nil {
				return nil, err
			}
			n.Engine = fmt.Sprintf("tcp://127.0.0.1:%d", port)
			i, _ := strconv.Atoi(s.Labels[LabelIndex])
			nodes = append(nodes, indexed{i, n})
		}
	}
	sort.Slice(nodes, func(a, b int) bool { return nodes[a].i < nodes[b].i })
	for _, n := range nodes {
		c.Nodes = append(c.Nodes, n.n)
	}
	p.markPartitioned(ctx, c)
	return c, nil
}

func hostPort(ports []container.PortSummary, private uint16) int {
	for _, pt := range ports {
		if pt.PrivatePort == private && pt.PublicPort != 0 {
			return int(pt.PublicPort)
		}
	}
	return 0
}

// enginePort reads the node's published engine port from its configuration,
// which (unlike the live port list) is there while the node is down too.
func (p *Provider) enginePort(ctx context.Context, id string) (int, error) {
	ins, err := p.host.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return 0, fmt.Errorf("inspecting node container %s: %w", id, err)
	}
	for _, b := range ins.Container.HostConfig.PortBindings[network.MustParsePort(enginePort)] {
		if port, err := strconv.Atoi(b.HostPort); err == nil && port != 0 {
			return port, nil
		}
	}
	return 0, fmt.Errorf("node container %s publishes no engine port", ins.Container.Name)
}

func (p *Provider) markPartitioned(ctx context.Context, c *provider.Cluster) {
	var wg sync.WaitGroup
	for i := range c.Nodes {
		if !c.Nodes[i].Running() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := engine.Exec(ctx, p.host, containerName(c.Name, c.Nodes[i].Name), "iptables", "-n", "-L", partitionChain)
			c.Nodes[i].Partitioned = err == nil && r.ExitCode == 0
		}()
	}
	wg.Wait()
}

// List implements provider.Provider.
func (p *Provider) List(ctx context.Context) ([]string, error) {
	seen := map[string]bool{}
	cs, err := p.host.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: anyLabFilter()})
	if err != nil {
		return nil, fmt.Errorf("listing lab containers: %w", err)
	}
	for _, c := range cs.Items {
		seen[c.Labels[LabelLab]] = true
	}
	ns, err := p.host.NetworkList(ctx, client.NetworkListOptions{Filters: anyLabFilter()})
	if err != nil {
		return nil, fmt.Errorf("listing lab networks: %w", err)
	}
	for _, n := range ns.Items {
		seen[n.Labels[LabelLab]] = true
	}
	vs, err := p.host.VolumeList(ctx, client.VolumeListOptions{Filters: anyLabFilter()})
	if err != nil {
		return nil, fmt.Errorf("listing lab volumes: %w", err)
	}
	for _, v := range vs.Items {
		seen[v.Labels[LabelLab]] = true
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

// Delete implements provider.Provider.
func (p *Provider) Delete(ctx context.Context, name string) error {
	return p.sweep(ctx, name, labFilter(name))
}

// DeleteRun implements provider.Provider.
func (p *Provider) DeleteRun(ctx context.Context, name, run string) error {
	return p.sweep(ctx, name, labFilter(name).Add("label", LabelRun+"="+run))
}

// sweep removes containers, then volumes, then networks matching filter. It
// keeps going past errors and reports them all, so a half-made lab is swept
// as far as possible.
func (p *Provider) sweep(ctx context.Context, name string, filter client.Filters) error {
	var errs []error
	cs, err := p.host.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: filter})
	if err != nil {
		return fmt.Errorf("listing containers of lab %s: %w", name, err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, c := range cs.Items {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.removeContainer(ctx, c.ID); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	vs, err := p.host.VolumeList(ctx, client.VolumeListOptions{Filters: filter})
	if err != nil {
		errs = append(errs, fmt.Errorf("listing volumes of lab %s: %w", name, err))
	} else {
		for _, v := range vs.Items {
			if _, err := p.host.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("removing volume %s: %w", v.Name, err))
			}
		}
	}
	ns, err := p.host.NetworkList(ctx, client.NetworkListOptions{Filters: filter})
	if err != nil {
		errs = append(errs, fmt.Errorf("listing networks of lab %s: %w", name, err))
	} else {
		for _, n := range ns.Items {
			if _, err := p.host.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("removing network %s: %w", n.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// DeleteCache removes the registry blob cache shared by labs.
func (p *Provider) DeleteCache(ctx context.Context) error {
	if _, err := p.host.VolumeRemove(ctx, CacheVolume, client.VolumeRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("removing volume %s: %w", CacheVolume, err)
	}
	return nil
}

func (p *Provider) removeContainer(ctx context.Context, id string) error {
	_, err := p.host.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("removing container %s: %w", id, err)
	}
	return nil
}

// Do implements provider.Provider.
func (p *Provider) Do(ctx context.Context, lab, node string, a provider.Action) error {
	c, err := p.Get(ctx, lab)
	if err != nil {
		return err
	}
	n, err := c.Node(node)
	if err != nil {
		return err
	}
	name := containerName(lab, node)
	switch a {
	case provider.Kill:
		_, err = p.host.ContainerKill(ctx, name, client.ContainerKillOptions{Signal: "KILL"})
	case provider.Stop:
		timeout := 10
		_, err = p.host.ContainerStop(ctx, name, client.ContainerStopOptions{Timeout: &timeout})
	case provider.Start:
		if _, err = p.host.ContainerStart(ctx, name, client.ContainerStartOptions{}); err == nil {
			err = waitEngine(ctx, n)
		}
	case provider.Pause:
		_, err = p.host.ContainerPause(ctx, name, client.ContainerPauseOptions{})
	case provider.Unpause:
		_, err = p.host.ContainerUnpause(ctx, name, client.ContainerUnpauseOptions{})
	case provider.Partition, provider.Heal:
		err = p.firewall(ctx, lab, n, a == provider.Partition)
	default:
		err = fmt.Errorf("unknown action %q", a)
	}
	if err != nil {
		return fmt.Errorf("node %s %s: %w", a, node, err)
	}
	return nil
}

// waitEngine waits until the node's dockerd answers again.
func waitEngine(ctx context.Context, n provider.Node) error {
	return waitHTTP(ctx, "the engine of node "+n.Name, strings.Replace(n.Engine, "tcp://", "http://", 1)+"/_ping")
}

// waitHTTP waits until url answers 200, reporting what it last got.
func waitHTTP(ctx context.Context, what, url string) error {
	_, err := wait.For(ctx, what+" to answer at "+url, EngineTimeout, 100*time.Millisecond, wait.HTTPOK(url))
	return err
}

const partitionChain = "SWARMLAB-PARTITION"

// firewall cuts the node off its peers, or heals it. The cut is made with
// iptables inside the node rather than by disconnecting its network, because
// the host reaches the node's engine through that same network: the node
// keeps talking to the host (the network's gateway) and to nobody else.
func (p *Provider) firewall(ctx context.Context, lab string, n provider.Node, cut bool) error {
	ns, err := p.host.NetworkInspect(ctx, networkName(lab), client.NetworkInspectOptions{})
	if err != nil {
		return fmt.Errorf("inspecting network of lab %s: %w", lab, err)
	}
	if len(ns.Network.IPAM.Config) == 0 {
		return fmt.Errorf("network %s has no subnet", networkName(lab))
	}
	subnet := ns.Network.IPAM.Config[0].Subnet.String()
	gw := ns.Network.IPAM.Config[0].Gateway.String()
	script := healScript
	if cut {
		script = healScript + fmt.Sprintf(partitionScript, gw, subnet)
	}
	r, err := engine.Exec(ctx, p.host, containerName(lab, n.Name), "sh", "-c", script)
	if err != nil {
		return err
	}
	return r.MustSucceed("iptables")
}

const healScript = `
for c in INPUT OUTPUT FORWARD; do
  while iptables -D $c -j ` + partitionChain + ` 2>/dev/null; do :; done
done
iptables -F ` + partitionChain + ` 2>/dev/null || true
iptables -X ` + partitionChain + ` 2>/dev/null || true
`

// partitionScript drops all traffic to and from the lab subnet except the
// gateway (%[1]s), which is how the host reaches the engine.
const partitionScript = `
set -e
iptables -N ` + partitionChain + `
iptables -A ` + partitionChain + ` -s %[1]s -j RETURN
iptables -A ` + partitionChain + ` -d %[1]s -j RETURN
iptables -A ` + partitionChain + ` -s %[2]s -j DROP
iptables -A ` + partitionChain + ` -d %[2]s -j DROP
for c in INPUT OUTPUT FORWARD; do iptables -I $c 1 -j ` + partitionChain + `; done
`

// Exec implements provider.Provider.
func (p *Provider) Exec(ctx context.Context, lab, node string, cmd ...string) (string, error) {
	r, err := engine.Exec(ctx, p.host, containerName(lab, node), cmd...)
	if err != nil {
		return "", err
	}
	if err := r.MustSucceed(strings.Join(cmd, " ")); err != nil {
		return r.Stdout, err
	}
	return r.Stdout, nil
}

// Logs implements provider.Provider: the node container's output is its
// dockerd log.
func (p *Provider) Logs(ctx context.Context, lab, node string, w io.Writer) error {
	rc, err := p.host.ContainerLogs(ctx, containerName(lab, node), client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Timestamps: true})
	if err != nil {
		return fmt.Errorf("logs of node %s: %w", node, err)
	}
	defer rc.Close()
	_, err = stdcopy.StdCopy(w, w, rc)
	return err
}

var _ provider.Provider = (*Provider)(nil)
