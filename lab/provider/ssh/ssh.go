// Package ssh provides lab nodes on hosts of your own that already run
// Docker, reached over SSH. The lab talks to each host's engine through its
// unix socket, over SSH (no TCP engine port, no docker CLI on either side),
// and runs the fault verbs as commands over SSH: kill, stop and start act on
// the host's Docker engine, partition and heal add and remove iptables rules
// that drop swarm's ports from the host's peers.
//
// Images: each host runs a lab registry container bound to its own
// 127.0.0.1:5000 (a loopback registry needs no insecure-registry setting),
// and this machine pushes to each of them through a local port forwarded
// over SSH. Nodes pull "127.0.0.1:5000/<image>". Docker Hub names (redis,
// nginx) are pulled by the hosts themselves, as they normally would.
package ssh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/swarmlab/swarmlab/lab/internal/engine"
	"github.com/swarmlab/swarmlab/lab/provider"
	"github.com/swarmlab/swarmlab/lab/provider/common"
	"github.com/swarmlab/swarmlab/lab/topology"
	"github.com/swarmlab/swarmlab/lab/wait"
)

// RegistryPort is where each host's lab registry listens, on its loopback.
const RegistryPort = "5000"

// RegistryAddr is the registry as nodes see it.
const RegistryAddr = "127.0.0.1:" + RegistryPort

// Provider runs the nodes of one topology on its hosts.
type Provider struct {
	topo          *topology.Topology
	local         client.APIClient // this machine's engine, which holds the registry image
	registryImage string
	hosts         []*host
}

// New returns the provider for t, an ssh topology (defaulted and
// validated). local is this machine's engine: it holds the registry image
// that is copied to the hosts, and pushes images to them.
func New(t *topology.Topology, local client.APIClient, registryImage string) *Provider {
	p := &Provider{topo: t, local: local, registryImage: registryImage}
	for _, n := range t.Nodes {
		p.hosts = append(p.hosts, newHost(n))
	}
	return p
}

// Name implements provider.Provider.
func (p *Provider) Name() string { return topology.ProviderSSH }

// closeHosts ends every SSH connection and port forward.
func (p *Provider) closeHosts() {
	for _, h := range p.hosts {
		h.close()
	}
}

// each runs fn on every host at once and joins the errors.
func (p *Provider) each(fn func(h *host) error) error {
	errs := make([]error, len(p.hosts))
	var wg sync.WaitGroup
	for i, h := range p.hosts {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = fn(h) }()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Create implements provider.Provider: it checks every host (SSH, engine,
// not in a swarm, no lab of that name), then starts a lab registry on each.
func (p *Provider) Create(ctx context.Context, t *topology.Topology, opts provider.CreateOptions) (provider.Cluster, error) {
	if t.Name != p.topo.Name {
		return nil, fmt.Errorf("ssh provider made for lab %s asked to create lab %s", p.topo.Name, t.Name)
	}
	err := p.each(func(h *host) error {
		c, err := h.Engine()
		if err != nil {
			return err
		}
		if _, err := engine.Ping(ctx, c); err != nil {
			return fmt.Errorf("%s: the Docker engine does not answer on %s: %w", h.name(), DockerSocket, err)
		}
		info, err := c.Info(ctx, client.InfoOptions{})
		if err != nil {
			return fmt.Errorf("%s: docker info: %w", h.name(), err)
		}
		if st := info.Info.Swarm.LocalNodeState; st != swarm.LocalNodeStateInactive {
			return fmt.Errorf("%s is already in a swarm (state %s); the lab forms a swarm of its own and never changes one it did not make: leave it first (docker swarm leave), or use another host", h.name(), st)
		}
		cs, err := c.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: common.LabFilter(t.Name)})
		if err != nil {
			return fmt.Errorf("%s: listing containers: %w", h.name(), err)
		}
		if len(cs.Items) > 0 {
			return fmt.Errorf("%w: %s already has lab %s (run %s); remove it with: swarmlab down %s",
				provider.ErrExists, h.name(), t.Name, cs.Items[0].Labels[common.LabelRun], t.Name)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = p.each(func(h *host) error { return p.startRegistry(ctx, h, opts.RunID) })
	if err != nil {
		return nil, err
	}
	return p.Open(ctx, provider.Record{Name: t.Name, Provider: topology.ProviderSSH, RunID: opts.RunID, Topology: t})
}

// startRegistry copies the registry image to the host if it lacks it, runs
// the lab registry on the host's 127.0.0.1:5000, and waits until it answers
// through the forwarded port.
func (p *Provider) startRegistry(ctx context.Context, h *host, run string) error {
	c, err := h.Engine()
	if err != nil {
		return err
	}
	if err := p.copyImage(ctx, h, c, p.registryImage); err != nil {
		return err
	}
	port := network.MustParsePort(RegistryPort + "/tcp")
	created, err := c.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: common.RegistryName(p.topo.Name),
		Config: &container.Config{
			Image:        p.registryImage,
			Labels:       map[string]string{common.LabelLab: p.topo.Name, common.LabelRun: run, common.LabelComponent: common.ComponentRegistry},
			ExposedPorts: network.PortSet{port: {}},
		},
		HostConfig: &container.HostConfig{
			PortBindings:  network.PortMap{port: {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: RegistryPort}}},
			RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyAlways},
		},
	})
	if err != nil {
		return fmt.Errorf("%s: creating the lab registry: %w", h.name(), err)
	}
	if _, err := c.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("%s: starting the lab registry on 127.0.0.1:%s (is the port taken?): %w", h.name(), RegistryPort, err)
	}
	addr, err := h.forward(RegistryAddr)
	if err != nil {
		return err
	}
	return waitHTTP(ctx, "the lab registry on "+h.name(), "http://"+addr+"/v2/")
}

// copyImage loads ref from this machine's engine into the host's, unless
// the host has it.
func (p *Provider) copyImage(ctx context.Context, h *host, c *client.Client, ref string) error {
	if _, err := c.ImageInspect(ctx, ref); err == nil {
		return nil
	}
	saved, err := p.local.ImageSave(ctx, []string{ref})
	if err != nil {
		return fmt.Errorf("saving %s on this machine: %w", ref, err)
	}
	defer saved.Close()
	loaded, err := c.ImageLoad(ctx, saved, client.ImageLoadWithQuiet(true))
	if err != nil {
		return fmt.Errorf("%s: loading %s: %w", h.name(), ref, err)
	}
	io.Copy(io.Discard, loaded)
	loaded.Close()
	if _, err := c.ImageInspect(ctx, ref); err != nil {
		return fmt.Errorf("%s: %s is missing after loading it: %w", h.name(), ref, err)
	}
	return nil
}

// waitHTTP waits until url answers 200, reporting what it last got.
func waitHTTP(ctx context.Context, what, url string) error {
	return common.WaitHTTP(ctx, what, url, 200*time.Millisecond)
}

// Open implements provider.Provider: the lab's nodes are the hosts of the
// recorded topology, which must be those the provider was made for. A node
// whose engine does not answer is reported as Stopped (SSH works) or
// Unreachable (it does not).
func (p *Provider) Open(ctx context.Context, rec provider.Record) (provider.Cluster, error) {
	if rec.Name != p.topo.Name {
		return nil, fmt.Errorf("%w %q (this ssh provider serves lab %s)", provider.ErrNotFound, rec.Name, p.topo.Name)
	}
	t := rec.Topology
	if t == nil {
		return nil, fmt.Errorf("ssh lab %s: its record has no topology, which names its hosts", rec.Name)
	}
	if err := p.serves(t); err != nil {
		return nil, err
	}
	src, _ := filepath.Abs(t.Source())
	c := &cluster{p: p, topology: src, recordedRun: rec.RunID}
	for _, h := range p.hosts {
		c.nodes = append(c.nodes, &machine{c: c, h: h})
	}
	if err := c.Refresh(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// serves checks that t's nodes are the provider's hosts, in order.
func (p *Provider) serves(t *topology.Topology) error {
	if len(t.Nodes) != len(p.hosts) {
		return fmt.Errorf("ssh lab %s: its record has %d nodes, this provider %d hosts", t.Name, len(t.Nodes), len(p.hosts))
	}
	for i, n := range t.Nodes {
		h := p.hosts[i].node
		if n.Name != h.Name || (n.SSH == nil) != (h.SSH == nil) || (n.SSH != nil && *n.SSH != *h.SSH) {
			return fmt.Errorf("ssh lab %s: recorded node %s is not host %s of this provider", t.Name, n.Name, h.Name)
		}
	}
	return nil
}

// state says whether the host's engine answers, and the run that made the
// lab registry on it.
func (p *Provider) state(ctx context.Context, h *host) (state provider.State, run string) {
	c, err := h.Engine()
	if err != nil {
		return provider.Unreachable, ""
	}
	cctx, cancel := context.WithTimeout(ctx, common.PingTimeout)
	defer cancel()
	if _, err := engine.Ping(cctx, c); err != nil {
		if _, err := h.client(cctx); err != nil {
			return provider.Unreachable, ""
		}
		return provider.Stopped, ""
	}
	cs, err := c.ContainerList(cctx, client.ContainerListOptions{All: true, Filters: common.LabFilter(p.topo.Name)})
	if err == nil && len(cs.Items) > 0 {
		run = cs.Items[0].Labels[common.LabelRun]
	}
	return provider.Running, run
}

// List implements provider.Provider: the provider serves one lab.
func (p *Provider) List(ctx context.Context) ([]string, error) {
	return []string{p.topo.Name}, nil
}

// Persistent implements provider.Provider: the hosts are the user's, and
// their engines outlive the lab, so the lab ends its swarm on them before
// Delete.
func (p *Provider) Persistent() bool { return true }

// Delete implements provider.Provider: it heals partitions and removes the
// lab registries and the images pulled from them. The lab's swarm (its
// services, the hosts' membership) is the lab's to end, before.
func (p *Provider) Delete(ctx context.Context, name string) error {
	return p.teardown(ctx, name, "")
}

// DeleteRun implements provider.Provider: the same as Delete, restricted to
// what run made (its registries).
func (p *Provider) DeleteRun(ctx context.Context, name, run string) error {
	return p.teardown(ctx, name, run)
}

func (p *Provider) teardown(ctx context.Context, name, run string) error {
	if name != p.topo.Name {
		return nil
	}
	var errs []error
	errs = append(errs, p.each(func(h *host) error {
		_, err := h.mustRun(ctx, "removing partition rules", healScript)
		return err
	}))
	filter := common.LabFilter(name)
	if run != "" {
		filter = filter.Add("label", common.LabelRun+"="+run)
	}
	errs = append(errs, p.each(func(h *host) error {
		c, err := h.Engine()
		if err != nil {
			return err
		}
		cs, err := c.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: filter})
		if err != nil {
			return fmt.Errorf("%s: listing the lab's containers: %w", h.name(), err)
		}
		var errs []error
		for _, ct := range cs.Items {
			if _, err := c.ContainerRemove(ctx, ct.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("%s: removing container %s: %w", h.name(), ct.Names, err))
			}
		}
		errs = append(errs, removeRegistryImages(ctx, h, c))
		return errors.Join(errs...)
	}))
	p.closeHosts()
	return errors.Join(errs...)
}

// removeRegistryImages removes the images the host pulled from the lab
// registry (127.0.0.1:5000/...): the lab put them there.
func removeRegistryImages(ctx context.Context, h *host, c *client.Client) error {
	imgs, err := c.ImageList(ctx, client.ImageListOptions{})
	if err != nil {
		return fmt.Errorf("%s: listing images: %w", h.name(), err)
	}
	var errs []error
	for _, img := range imgs.Items {
		for _, tag := range img.RepoTags {
			if strings.HasPrefix(tag, RegistryAddr+"/") {
				if _, err := c.ImageRemove(ctx, tag, client.ImageRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
					errs = append(errs, fmt.Errorf("%s: removing image %s: %w", h.name(), tag, err))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// peers lists the addresses h's swarm peers use: their advertise and SSH
// addresses.
func (p *Provider) peers(h *host) []string {
	var out []string
	for _, o := range p.hosts {
		if o == h {
			continue
		}
		for _, a := range []string{o.node.SSH.AdvertiseAddr, o.node.SSH.Address} {
			if _, err := netip.ParseAddr(a); err == nil && !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	return out
}

// waitEngine waits until the host's engine answers again.
func waitEngine(ctx context.Context, h *host) error {
	c, err := h.Engine()
	if err != nil {
		return err
	}
	_, err = wait.For(ctx, "the engine of "+h.name()+" to answer", common.EngineTimeout, 200*time.Millisecond,
		func(ctx context.Context) wait.Result {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if _, err := engine.Ping(cctx, c); err != nil {
				return wait.Continue("%v", err)
			}
			return wait.Done("it answers")
		})
	return err
}

var _ provider.Provider = (*Provider)(nil)
