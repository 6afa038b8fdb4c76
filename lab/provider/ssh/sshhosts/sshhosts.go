// Package sshhosts starts containers that stand in for hosts of your own,
// to test the ssh provider on one machine: each runs sshd and a Docker
// engine on its unix socket only (lab/images/sshnode), with the same
// capabilities as the docker provider's nodes (common.NodeHostConfig). It generates the SSH key
// pair and the known_hosts file, and writes an ssh topology pointing at the
// hosts' bridge addresses.
package sshhosts

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	xssh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/swarmlab/swarmlab/lab/images"
	"github.com/swarmlab/swarmlab/lab/internal/engine"
	"github.com/swarmlab/swarmlab/lab/internal/registry"
	"github.com/swarmlab/swarmlab/lab/provider/common"
	"github.com/swarmlab/swarmlab/lab/topology"
	"github.com/swarmlab/swarmlab/lab/wait"
)

// LabelHosts marks every container, network and volume of a set of hosts.
const LabelHosts = "io.swarmlab.sshhosts"

// ReadyTimeout bounds how long a host may take to run sshd and dockerd.
const ReadyTimeout = 2 * time.Minute

// Node is one host to start.
type Node struct {
	Name string
	Role string
}

// Options say what to start.
type Options struct {
	// Name prefixes every resource: swarmlab-<name>-<node>.
	Name  string
	Nodes []Node
	// Dir receives the key, known_hosts and topology files.
	Dir string
	// Mirror lists standard lab images ("haproxy", "redis") to serve to
	// the hosts as docker.io, from a registry container on their network
	// that stands in for Docker Hub. Empty: no mirror.
	Mirror []string
	// Require lists the e2e suite's Ginkgo labels the topology requires
	// (its e2e.require): a full run on these hosts must run each.
	Require []string
}

// Hosts is a started set of hosts.
type Hosts struct {
	Name string
	// Topology is the path of the ssh topology written for them.
	Topology string
	// Addrs maps node names to bridge addresses.
	Addrs map[string]string
}

func netName(name string) string { return "swarmlab-" + name + "-hosts" }

// Start starts the hosts and writes their topology; on error, what it made
// is removed.
func Start(ctx context.Context, host client.APIClient, opts Options) (h *Hosts, err error) {
	defer func() {
		if err != nil {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			err = errors.Join(err, Remove(cctx, host, opts.Name))
		}
	}()
	// The topology names the key files: absolute paths work from anywhere.
	if opts.Dir, err = filepath.Abs(opts.Dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, err
	}
	keyFile := filepath.Join(opts.Dir, "id_ed25519")
	authorized, err := writeKey(keyFile)
	if err != nil {
		return nil, err
	}
	labels := map[string]string{LabelHosts: opts.Name}
	if _, err := host.NetworkCreate(ctx, netName(opts.Name), client.NetworkCreateOptions{Driver: "bridge", Labels: labels}); err != nil {
		return nil, fmt.Errorf("creating network %s: %w", netName(opts.Name), err)
	}
	mirror := ""
	if len(opts.Mirror) > 0 {
		if mirror, err = startMirror(ctx, host, opts); err != nil {
			return nil, err
		}
	}
	nodeImage, err := images.Resolve(ctx, host, images.SSHNode())
	if err != nil {
		return nil, err
	}
	info, err := host.Info(ctx, client.InfoOptions{})
	if err != nil {
		return nil, err
	}
	privileged := common.PreferPrivileged(func() string { return info.Info.CgroupVersion })

	h = &Hosts{Name: opts.Name, Addrs: map[string]string{}}
	keys := make([]string, len(opts.Nodes))
	var mu sync.Mutex
	errs := make([]error, len(opts.Nodes))
	var wg sync.WaitGroup
	for i, n := range opts.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			addr, hostKey, err := startHost(ctx, host, opts.Name, n, nodeImage, privileged, authorized, mirror)
			if err != nil {
				errs[i] = err
				return
			}
			mu.Lock()
			h.Addrs[n.Name] = addr
			mu.Unlock()
			keys[i] = knownhosts.Line([]string{addr}, hostKey)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	knownFile := filepath.Join(opts.Dir, "known_hosts")
	if err := os.WriteFile(knownFile, []byte(strings.Join(keys, "\n")+"\n"), 0o600); err != nil {
		return nil, err
	}
	h.Topology = filepath.Join(opts.Dir, opts.Name+".yaml")
	if err := os.WriteFile(h.Topology, []byte(topologyYAML(opts, h.Addrs, keyFile, knownFile)), 0o600); err != nil {
		return nil, err
	}
	return h, nil
}

// writeKey writes a new ed25519 private key and returns its public half as
// an authorized_keys line.
func writeKey(path string) (string, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	block, err := xssh.MarshalPrivateKey(priv, "swarmlab test hosts")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return "", err
	}
	sshPub, err := xssh.NewPublicKey(pub)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(xssh.MarshalAuthorizedKey(sshPub))), nil
}

func topologyYAML(opts Options, addrs map[string]string, keyFile, knownFile string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `# Written by sshhosts: %d containers standing in for hosts of your own.
apiVersion: %s
kind: Topology
name: %s
provider:
  type: ssh
  ssh:
    user: root
    port: 22
    identityFile: %s
    knownHosts: %s
swarm:
  dispatcherHeartbeat: 1s
nodes:
`, len(opts.Nodes), topology.APIVersion, opts.Name, keyFile, knownFile)
	for _, n := range opts.Nodes {
		fmt.Fprintf(&b, "  - name: %s\n    role: %s\n    labels: {role: %s}\n    ssh: {address: %s}\n", n.Name, n.Role, n.Role, addrs[n.Name])
	}
	if len(opts.Require) > 0 {
		fmt.Fprintf(&b, "e2e:\n  require: [%s]\n", strings.Join(opts.Require, ", "))
	}
	return b.String()
}

// startMirror runs a registry on the hosts' network holding the standard
// images under their docker.io names, and returns its address there.
func startMirror(ctx context.Context, host client.APIClient, opts Options) (string, error) {
	regImage, err := images.Resolve(ctx, host, images.Registry())
	if err != nil {
		return "", err
	}
	port, err := freePort()
	if err != nil {
		return "", err
	}
	p := network.MustParsePort("5000/tcp")
	name := "swarmlab-" + opts.Name + "-mirror"
	created, err := host.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:   name,
		Config: &container.Config{Image: regImage, Labels: map[string]string{LabelHosts: opts.Name}, ExposedPorts: network.PortSet{p: {}}},
		HostConfig: &container.HostConfig{
			PortBindings: network.PortMap{p: {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: strconv.Itoa(port)}}},
		},
		NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{netName(opts.Name): {}}},
	})
	if err != nil {
		return "", fmt.Errorf("creating %s: %w", name, err)
	}
	if _, err := host.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		return "", fmt.Errorf("starting %s: %w", name, err)
	}
	push := fmt.Sprintf("127.0.0.1:%d", port)
	// docker-proxy accepts connections before the registry listens: only
	// an HTTP answer counts.
	if _, err := wait.For(ctx, name+" to answer", time.Minute, 200*time.Millisecond, wait.HTTPOK("http://"+push+"/v2/")); err != nil {
		return "", err
	}
	for _, want := range opts.Mirror {
		img, ok := images.Get(want)
		if !ok || !img.Standard() {
			return "", fmt.Errorf("%q is not a standard lab image", want)
		}
		local, err := images.Resolve(ctx, host, img)
		if err != nil {
			return "", err
		}
		var targets []string
		for _, pub := range img.Public {
			targets = append(targets, registry.Name(pub))
		}
		if err := registry.Push(ctx, host, push, local, targets...); err != nil {
			return "", err
		}
	}
	ins, err := host.ContainerInspect(ctx, created.ID, client.ContainerInspectOptions{})
	if err != nil {
		return "", err
	}
	return ins.Container.NetworkSettings.Networks[netName(opts.Name)].IPAddress.String() + ":5000", nil
}

// startHost runs one host and waits until sshd and dockerd run in it; it
// returns the host's address and SSH host key, read from inside the
// container (a channel the test trusts).
func startHost(ctx context.Context, host client.APIClient, name string, n Node, image string, privileged bool, authorized, mirror string) (string, xssh.PublicKey, error) {
	cname := "swarmlab-" + name + "-" + n.Name
	labels := map[string]string{LabelHosts: name}
	vol := cname + "-docker"
	if _, err := host.VolumeCreate(ctx, client.VolumeCreateOptions{Name: vol, Labels: labels}); err != nil {
		return "", nil, fmt.Errorf("creating volume %s: %w", vol, err)
	}
	hc := &container.HostConfig{}
	common.NodeHostConfig(hc, privileged, vol)
	created, err := host.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: cname,
		Config: &container.Config{
			Image: image, Hostname: n.Name, Labels: labels,
			Env: []string{"SWARMLAB_AUTHORIZED_KEYS=" + authorized, "SWARMLAB_REGISTRY_MIRROR=" + mirror},
		},
		HostConfig:       hc,
		NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{netName(name): {}}},
	})
	if err != nil {
		return "", nil, fmt.Errorf("creating host %s: %w", cname, err)
	}
	if _, err := host.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		return "", nil, fmt.Errorf("starting host %s: %w", cname, err)
	}
	var pubLine string
	if _, err := wait.For(ctx, "host "+cname+" to run sshd and dockerd", ReadyTimeout, 300*time.Millisecond, func(ctx context.Context) wait.Result {
		ins, err := host.ContainerInspect(ctx, created.ID, client.ContainerInspectOptions{})
		if err == nil && !ins.Container.State.Running {
			return wait.Fail(fmt.Errorf("host %s exited with code %d (see docker logs %s)", cname, ins.Container.State.ExitCode, cname))
		}
		r, err := engine.Exec(ctx, host, cname, "sh", "-c", "pgrep -x sshd >/dev/null && docker version >/dev/null && cat /etc/ssh/ssh_host_ed25519_key.pub")
		if err != nil {
			return wait.Continue("%v", err)
		}
		if r.ExitCode != 0 {
			return wait.Continue("not yet: exit %d %s", r.ExitCode, strings.TrimSpace(r.Stderr))
		}
		pubLine = r.Stdout
		return wait.Done("ready")
	}); err != nil {
		return "", nil, err
	}
	key, _, _, _, err := xssh.ParseAuthorizedKey([]byte(pubLine))
	if err != nil {
		return "", nil, fmt.Errorf("host %s: host key: %w", cname, err)
	}
	ins, err := host.ContainerInspect(ctx, created.ID, client.ContainerInspectOptions{})
	if err != nil {
		return "", nil, err
	}
	return ins.Container.NetworkSettings.Networks[netName(name)].IPAddress.String(), key, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Remove removes every container, volume and network of the named hosts.
func Remove(ctx context.Context, host client.APIClient, name string) error {
	return engine.RemoveLabelled(ctx, host, make(client.Filters).Add("label", LabelHosts+"="+name))
}
