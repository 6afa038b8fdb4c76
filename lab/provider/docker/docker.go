// Package docker provides lab nodes as Docker-in-Docker containers on one
// engine: each node is a container running its own dockerd, on a bridge
// network of its own, with its engine published on 127.0.0.1 only.
package docker

import (
	"context"
	"errors"
	"fmt"
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
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	tcnetwork "github.com/testcontainers/testcontainers-go/network"

	"github.com/swarmlab/swarmlab/lab/provider"
	"github.com/swarmlab/swarmlab/lab/provider/common"
	"github.com/swarmlab/swarmlab/lab/topology"
)

const (
	enginePort   = "2375/tcp"
	registryPort = "5000/tcp"
	// RegistryAlias is the name nodes reach the lab registry by.
	RegistryAlias = "registry"
	// CacheVolume holds the registry's blobs across labs.
	CacheVolume = "swarmlab-registry-cache"
	// pollHTTP is how often the provider looks whether an engine or the
	// registry answers.
	pollHTTP = 100 * time.Millisecond
)

func anyLabFilter() client.Filters {
	return make(client.Filters).Add("label", common.LabelLab)
}

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
	privileged *bool  // nil until the first node says whether --privileged works
	allCaps    bool   // the engine refused the capability set's drop: keep "ALL" alone (startNode)
	access     string // accessDirect or accessTunnel, once decided (access.go)
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

// Create implements provider.Provider.
func (p *Provider) Create(ctx context.Context, t *topology.Topology, opts provider.CreateOptions) (provider.Cluster, error) {
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	upstream, err := upstreamFromEnv() // dockerio.go
	if err != nil {
		return nil, err
	}
	if err := p.checkFree(ctx, t.Name); err != nil {
		return nil, err
	}
	if err := p.ensureLogsVolume(ctx, t.Name, opts.RunID, logf); err != nil { // logs.go
		return nil, err
	}
	src, _ := filepath.Abs(t.Source())
	base := map[string]string{common.LabelLab: t.Name, common.LabelRun: opts.RunID, common.LabelTopology: src}
	reach, relayed, closeReach, err := p.reacher(ctx, t.Name, base, nil)
	if err != nil {
		return nil, err
	}
	defer closeReach()
	if relayed != nil {
		logf("engine %s is not this machine's: reaching the lab through relay %s", p.host.DaemonHost(), relayName(t.Name))
	}

	subnet, err := p.createNetwork(ctx, t, base)
	if err != nil {
		return nil, err
	}
	logf("network %s on %s", networkName(t.Name), subnet)
	gateway := subnet.Addr().Next()
	addr := func(i int) netip.Addr { // .2 is the registry, .3 the docker.io cache, nodes from .10
		a := gateway
		for range i {
			a = a.Next()
		}
		return a
	}

	nodeEnv := map[string]string{"SWARMLAB_REGISTRY": RegistryAlias + ":5000"}
	if upstream != "" {
		logf("docker.io cache %s:5000 of %s", DockerIOAlias, upstream)
		nodeEnv["SWARMLAB_DOCKERIO_MIRROR"] = DockerIOAlias + ":5000"
	}
	var wg sync.WaitGroup
	errs := make([]error, len(t.Nodes)+2)
	wg.Add(1)
	go func() {
		defer wg.Done()
		errs[0] = p.startRegistry(ctx, reach, t.Name, addr(1), base)
	}()
	if upstream != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[1] = p.startDockerIOCache(ctx, reach, t.Name, addr(2), base, upstream, logf)
		}()
	}
	for i, n := range t.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i+2] = p.startNode(ctx, reach, t.Name, i, n, addr(9+i), base, nodeEnv)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return p.Open(ctx, provider.Record{Name: t.Name, Provider: topology.ProviderDocker, RunID: opts.RunID, Topology: t})
}

// checkFree refuses a name that any labelled resource already uses.
func (p *Provider) checkFree(ctx context.Context, name string) error {
	cs, err := p.host.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: common.LabFilter(name)})
	if err != nil {
		return fmt.Errorf("listing containers of lab %s: %w", name, err)
	}
	ns, err := p.host.NetworkList(ctx, client.NetworkListOptions{Filters: common.LabFilter(name)})
	if err != nil {
		return fmt.Errorf("listing networks of lab %s: %w", name, err)
	}
	if len(cs.Items) > 0 || len(ns.Items) > 0 {
		run := ""
		if len(cs.Items) > 0 {
			run = cs.Items[0].Labels[common.LabelRun]
		} else {
			run = ns.Items[0].Labels[common.LabelRun]
		}
		return fmt.Errorf("%w: a lab named %q is already running (run %s); use another --name, or remove it with: swarmlab down %s",
			provider.ErrExists, name, run, name)
	}
	return nil
}

// createNetwork makes the lab's bridge network on the topology's subnet, or
// on the first free 10.99.N.0/24.
func (p *Provider) createNetwork(ctx context.Context, t *topology.Topology, base map[string]string) (netip.Prefix, error) {
	labels := withLabels(base, map[string]string{common.LabelComponent: common.ComponentNetwork})
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
	// A subnet the engine refused as overlapping stays out of the next
	// picks: the network that holds it may be another lab's, created at the
	// same moment and not listed yet (three workshop labs started at once
	// picked the same /24 five times in 0.2 s).
	var refused []netip.Prefix
	for attempt := 0; attempt < 8; attempt++ {
		used, err := p.usedSubnets(ctx)
		if err != nil {
			return netip.Prefix{}, err
		}
		subnet, ok := freeSubnet(append(used, refused...))
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
		refused = append(refused, subnet)
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

func (p *Provider) startRegistry(ctx context.Context, reach reachFunc, lab string, ip netip.Addr, base map[string]string) error {
	if err := p.ensureCacheVolume(ctx, CacheVolume, "registry"); err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	_, err = testcontainers.Run(ctx, p.registryImage,
		testcontainers.WithName(common.RegistryName(lab)),
		testcontainers.WithLabels(withLabels(base, map[string]string{common.LabelComponent: common.ComponentRegistry})),
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
	return waitHTTP(ctx, reach, "the registry of lab "+lab, fmt.Sprintf("127.0.0.1:%d", port), "/v2/")
}

// ensureCacheVolume makes a blob cache shared by labs (the registry's, the
// docker.io cache's): labelled as a cache, with no lab's label, so that
// down leaves it.
func (p *Provider) ensureCacheVolume(ctx context.Context, name, what string) error {
	_, err := p.host.VolumeCreate(ctx, client.VolumeCreateOptions{
		Name: name, Labels: map[string]string{common.LabelCache: what},
	})
	if err != nil {
		return fmt.Errorf("creating volume %s: %w", name, err)
	}
	return nil
}

func (p *Provider) startNode(ctx context.Context, reach reachFunc, lab string, index int, n topology.Node, ip netip.Addr, base, env map[string]string) error {
	name := containerName(lab, n.Name)
	labels := withLabels(base, map[string]string{
		common.LabelComponent: common.ComponentNode, common.LabelNode: n.Name, common.LabelRole: n.Role,
		common.LabelIndex: strconv.Itoa(index), common.LabelAddr: ip.String(),
	})
	vol := name + "-docker"
	if _, err := p.host.VolumeCreate(ctx, client.VolumeCreateOptions{
		Name: vol, Labels: withLabels(base, map[string]string{common.LabelComponent: common.ComponentVolume, common.LabelNode: n.Name}),
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
			testcontainers.WithEnv(env), // the registries (swarmlab-node-entrypoint)
			testcontainers.WithExposedPorts(enginePort),
			testcontainers.WithConfigModifier(func(c *container.Config) { c.Hostname = n.Name }),
			// Its name, and aliases from its labels (aliases.go).
			tcnetwork.WithNetworkName(nodeAliases(n.Name, n.Labels), networkName(lab)),
			staticIP(networkName(lab), ip),
			testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
				common.NodeHostConfig(hc, privileged, vol)
				if p.keepAllCaps() {
					hc.CapDrop = nil
				}
				hc.Mounts = append(hc.Mounts, logsMount(lab)) // the lab's kept logs (logs.go)
				hc.PortBindings = loopbackPort(enginePort, port)
			}),
			testcontainers.WithLogger(tclog.NewNoopLogger()),
		)
		if err != nil {
			return fmt.Errorf("starting node %s: %w", n.Name, err)
		}
		return waitHTTP(ctx, reach, "the engine of node "+n.Name, fmt.Sprintf("127.0.0.1:%d", port), "/_ping")
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
	if err != nil && strings.Contains(err.Error(), "invalid CapDrop") {
		// Docker 26 and later refuse to drop a capability the environment
		// does not have (measured: an engine that itself runs in a node
		// container, without CAP_SYS_RESOURCE), and give "ALL" only the
		// ones it has: there, nothing needs dropping.
		p.setKeepAllCaps()
		if rmErr := p.removeContainer(ctx, name); rmErr != nil {
			return errors.Join(err, rmErr)
		}
		err = run(false)
	}
	return err
}

func (p *Provider) keepAllCaps() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.allCaps
}

func (p *Provider) setKeepAllCaps() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.allCaps = true
}

// tryPrivileged says whether to ask for --privileged: what worked for an
// earlier node, else what common.PreferPrivileged decides for the host
// engine (falling back to capabilities if refused, see startNode).
func (p *Provider) tryPrivileged(ctx context.Context) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.privileged != nil {
		return *p.privileged
	}
	return common.PreferPrivileged(func() string {
		info, err := p.host.Info(ctx, client.InfoOptions{})
		if err != nil {
			return ""
		}
		return info.Info.CgroupVersion
	})
}

func (p *Provider) setPrivileged(v bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.privileged = &v
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

// Open implements provider.Provider: the lab's containers are found by
// its name, on their labels; the run is theirs, else the record's.
func (p *Provider) Open(ctx context.Context, rec provider.Record) (provider.Cluster, error) {
	c := &cluster{p: p, name: rec.Name, recordedRun: rec.RunID}
	if err := c.Refresh(ctx); err != nil {
		return nil, err
	}
	reach, r, closeReach, err := p.reacher(ctx, rec.Name, map[string]string{
		common.LabelLab: rec.Name, common.LabelRun: c.RunID(), common.LabelTopology: c.Topology(),
	}, rec.Forwards)
	if err != nil {
		return nil, err
	}
	c.reach, c.relay, c.closeReach = reach, r, closeReach
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

// List implements provider.Provider.
func (p *Provider) List(ctx context.Context) ([]string, error) {
	seen := map[string]bool{}
	cs, err := p.host.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: anyLabFilter()})
	if err != nil {
		return nil, fmt.Errorf("listing lab containers: %w", err)
	}
	for _, c := range cs.Items {
		seen[c.Labels[common.LabelLab]] = true
	}
	ns, err := p.host.NetworkList(ctx, client.NetworkListOptions{Filters: anyLabFilter()})
	if err != nil {
		return nil, fmt.Errorf("listing lab networks: %w", err)
	}
	for _, n := range ns.Items {
		seen[n.Labels[common.LabelLab]] = true
	}
	vs, err := p.host.VolumeList(ctx, client.VolumeListOptions{Filters: anyLabFilter()})
	if err != nil {
		return nil, fmt.Errorf("listing lab volumes: %w", err)
	}
	for _, v := range vs.Items {
		seen[v.Labels[common.LabelLab]] = true
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

// Persistent implements provider.Provider: Delete removes the node
// containers, and the swarm with them.
func (p *Provider) Persistent() bool { return false }

// Delete implements provider.Provider.
func (p *Provider) Delete(ctx context.Context, name string) error {
	return p.sweep(ctx, name, common.LabFilter(name))
}

// DeleteRun implements provider.Provider.
//
// A bring-up cancelled in the middle of its Create may still have create
// calls in flight: the engine finishes them after the client gave up, so a
// container can appear after the sweep listed what there was (seen as one
// "created" registry container left by an interrupted up). So the sweep is
// repeated until the run's containers have stayed gone for settleQuiet.
func (p *Provider) DeleteRun(ctx context.Context, name, run string) error {
	f := common.LabFilter(name).Add("label", common.LabelRun+"="+run)
	err := p.sweep(ctx, name, f)
	for quiet := time.Duration(0); quiet < settleQuiet && ctx.Err() == nil; {
		select {
		case <-ctx.Done():
		case <-time.After(settlePoll):
		}
		cs, lerr := p.host.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
		if lerr != nil || len(cs.Items) > 0 {
			quiet = 0
			err = p.sweep(ctx, name, f)
			continue
		}
		quiet += settlePoll
	}
	return err
}

// How long a cancelled run's containers must stay gone, and how often
// DeleteRun looks.
const (
	settleQuiet = 1500 * time.Millisecond
	settlePoll  = 250 * time.Millisecond
)

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

// DeleteCache removes the blob caches shared by labs: the registry's and
// the docker.io cache's.
func (p *Provider) DeleteCache(ctx context.Context) error {
	var errs []error
	for _, v := range []string{CacheVolume, DockerIOCacheVolume} {
		if _, err := p.host.VolumeRemove(ctx, v, client.VolumeRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("removing volume %s: %w", v, err))
		}
	}
	return errors.Join(errs...)
}

func (p *Provider) removeContainer(ctx context.Context, id string) error {
	_, err := p.host.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("removing container %s: %w", id, err)
	}
	return nil
}

// waitHTTP waits until path answers at target ("127.0.0.1:port" on the
// engine host), reached as reach says.
func waitHTTP(ctx context.Context, reach reachFunc, what, target, path string) error {
	addr, err := reach(target)
	if err != nil {
		return err
	}
	if addr != target {
		what += " (through the relay, at " + target + " on the engine host)"
	}
	return common.WaitHTTP(ctx, what, "http://"+addr+path, pollHTTP)
}

// reachFunc turns a target on the engine host into the address this
// process dials for it.
type reachFunc func(target string) (string, error)

// reacher says how this process reaches lab's targets: as they are, or
// through the lab's relay (started here if it is not running): at the
// address pinned gives for a target (a forwarder process's), else at a
// listener of this process's own. The closer releases those listeners.
func (p *Provider) reacher(ctx context.Context, lab string, labels map[string]string, pinned map[string]string) (reachFunc, *relay, func(), error) {
	mode, err := p.accessMode(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	if mode == accessDirect {
		return func(t string) (string, error) { return t, nil }, nil, func() {}, nil
	}
	if err := p.ensureRelay(ctx, lab, labels); err != nil {
		return nil, nil, nil, err
	}
	r := newRelay(p.host, lab)
	reach := func(t string) (string, error) {
		if a, ok := pinned[t]; ok {
			return a, nil
		}
		return r.Addr(t)
	}
	return reach, r, func() { r.Close() }, nil
}

var _ provider.Provider = (*Provider)(nil)
