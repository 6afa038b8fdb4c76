package docker

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/swarmlab/swarmlab/lab/provider/common"
)

// How this process reaches what a lab runs: its node engines, its registry,
// and the ports its nodes publish.
//
// Direct: the engine runs on this machine (a Linux host, the default socket):
// the lab's bridge network is routable from here, and the engine host's
// loopback is this machine's. Everything is dialled as it is.
//
// Tunnel: the engine is anywhere else — Docker Desktop's VM, tcp:// or ssh://
// to another machine, a CI job's docker:dind sidecar. Nothing of the lab's
// bridge network is routable from here. Each lab then has a relay container
// on the engine host's own network (it sees the lab network from its
// gateway, as a local caller would), and every connection is carried through
// the engine API: `docker exec -i <relay> socat - TCP:<target>`, as kind
// drives its nodes through `docker exec`. Local listeners on 127.0.0.1 give
// each target an address that any client (the docker CLI, a browser, the
// moby client) can use; no port of a node engine is published beyond the
// engine host's loopback.

// AccessEnv forces the access mode: "direct" or "tunnel".
const AccessEnv = "SWARMLAB_ACCESS"

const (
	accessDirect = "direct"
	accessTunnel = "tunnel"
	// ComponentRelay is the LabelComponent value of a lab's relay container.
	ComponentRelay = "relay"
)

func relayName(lab string) string { return "swarmlab-" + lab + "-relay" }

// accessMode decides, once per provider, how this process reaches labs.
func (p *Provider) accessMode(ctx context.Context) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.access != "" {
		return p.access, nil
	}
	mode, err := chooseAccess(os.Getenv(AccessEnv), runtime.GOOS, p.host.DaemonHost(), func() string {
		info, err := p.host.Info(ctx, client.InfoOptions{})
		if err != nil {
			return ""
		}
		return info.Info.OperatingSystem
	})
	if err != nil {
		return "", err
	}
	p.access = mode
	return mode, nil
}

// chooseAccess is direct only for an engine on this Linux machine's own
// socket that is not Docker Desktop's VM; an override wins.
func chooseAccess(override, goos, daemonHost string, engineOS func() string) (string, error) {
	switch override {
	case accessDirect, accessTunnel:
		return override, nil
	case "":
	default:
		return "", fmt.Errorf("%s=%q: want %q or %q (or unset, to choose from the engine)", AccessEnv, override, accessDirect, accessTunnel)
	}
	if goos != "linux" || !strings.HasPrefix(daemonHost, "unix://") {
		return accessTunnel, nil
	}
	if strings.Contains(engineOS(), "Docker Desktop") {
		return accessTunnel, nil
	}
	return accessDirect, nil
}

// ensureRelay starts the lab's relay container if it is not running: one
// on the engine host's network, from the registry image (which carries
// socat), doing nothing but being there to exec into.
func (p *Provider) ensureRelay(ctx context.Context, lab string, labels map[string]string) error {
	name := relayName(lab)
	ins, err := p.host.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	switch {
	case err == nil && ins.Container.State != nil && ins.Container.State.Running:
		return nil
	case err == nil:
		if _, err := p.host.ContainerStart(ctx, name, client.ContainerStartOptions{}); err != nil {
			return fmt.Errorf("starting relay %s of lab %s: %w", name, lab, err)
		}
		return nil
	case !cerrdefs.IsNotFound(err):
		return fmt.Errorf("inspecting relay %s of lab %s: %w", name, lab, err)
	}
	_, err = p.host.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: name,
		Config: &container.Config{
			Image:      p.registryImage,
			Entrypoint: []string{"sleep"},
			Cmd:        []string{"infinity"},
			Labels:     withLabels(labels, map[string]string{common.LabelComponent: ComponentRelay}),
		},
		HostConfig: &container.HostConfig{NetworkMode: "host", Init: boolPtr(true)},
	})
	if err != nil && !cerrdefs.IsConflict(err) {
		return fmt.Errorf("creating relay %s of lab %s: %w", name, lab, err)
	}
	if _, err := p.host.ContainerStart(ctx, name, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("starting relay %s of lab %s: %w", name, lab, err)
	}
	return nil
}

func boolPtr(b bool) *bool { return &b }

var _ net.Conn = (*execConn)(nil)

// relay carries connections to targets on the engine host ("10.99.0.10:2375",
// "127.0.0.1:5000") through exec sessions in a lab's relay container, and
// gives each target a local address on 127.0.0.1 (its Loopback's Addr, made
// on first use and kept until Close).
type relay struct {
	host      client.APIClient
	container string
	*common.Loopback
}

func newRelay(host client.APIClient, lab string) *relay {
	r := &relay{host: host, container: relayName(lab)}
	r.Loopback = common.NewLoopback("relay "+r.container, dialTimeout, func(ctx context.Context, target string) (net.Conn, error) {
		c, err := r.Dial(ctx, target)
		if err != nil {
			return nil, err // not a nil *execConn in a non-nil net.Conn
		}
		return c, nil
	})
	return r
}

// dialTimeout bounds setting up one exec session.
const dialTimeout = 30 * time.Second

// Dial opens a connection to target through an exec session in the relay.
func (r *relay) Dial(ctx context.Context, target string) (*execConn, error) {
	created, err := r.host.ExecCreate(ctx, r.container, client.ExecCreateOptions{
		Cmd:         []string{"socat", "-", "TCP:" + target + ",connect-timeout=10"},
		AttachStdin: true, AttachStdout: true, AttachStderr: true,
	})
	if err != nil {
		return nil, fmt.Errorf("relay %s to %s: %w", r.container, target, err)
	}
	att, err := r.host.ExecAttach(ctx, created.ID, client.ExecAttachOptions{})
	if err != nil {
		return nil, fmt.Errorf("relay %s to %s: %w", r.container, target, err)
	}
	return newExecConn(att.HijackedResponse, target), nil
}

// execConn is a byte stream over an exec session: what is written goes to
// socat's stdin, its stdout is what is read. Its stderr (socat's reason
// when it cannot connect) ends the read side as an error.
type execConn struct {
	att    client.HijackedResponse
	target string
	pr     *io.PipeReader
}

func newExecConn(att client.HijackedResponse, target string) *execConn {
	pr, pw := io.Pipe()
	c := &execConn{att: att, target: target, pr: pr}
	go func() {
		var stderr strings.Builder
		_, err := stdcopy.StdCopy(pw, &stderr, att.Reader)
		if err == nil && stderr.Len() > 0 {
			err = fmt.Errorf("relay to %s: %s", target, strings.TrimSpace(stderr.String()))
		}
		pw.CloseWithError(err)
	}()
	return c
}

func (c *execConn) Read(b []byte) (int, error)  { return c.pr.Read(b) }
func (c *execConn) Write(b []byte) (int, error) { return c.att.Conn.Write(b) }
func (c *execConn) CloseWrite() error           { return c.att.CloseWrite() }

// The addresses and deadlines are the exec session's connection to the
// engine's.
func (c *execConn) LocalAddr() net.Addr                { return c.att.Conn.LocalAddr() }
func (c *execConn) RemoteAddr() net.Addr               { return c.att.Conn.RemoteAddr() }
func (c *execConn) SetDeadline(t time.Time) error      { return c.att.Conn.SetDeadline(t) }
func (c *execConn) SetReadDeadline(t time.Time) error  { return c.att.Conn.SetReadDeadline(t) }
func (c *execConn) SetWriteDeadline(t time.Time) error { return c.att.Conn.SetWriteDeadline(t) }
func (c *execConn) Close() error {
	c.att.Close()
	return c.pr.Close()
}
