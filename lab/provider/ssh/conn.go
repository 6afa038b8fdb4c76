package ssh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/client"
	xssh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/swarmlab/swarmlab/lab/provider/common"
	"github.com/swarmlab/swarmlab/lab/topology"
)

// DialTimeout bounds an SSH connection attempt, handshake included.
const DialTimeout = 15 * time.Second

// DockerSocket is where the hosts' engines listen.
const DockerSocket = "/var/run/docker.sock"

// host is one node's machine: its SSH connection (made on first use and
// made again when it breaks), its engine client over that connection, and a
// local port forwarded to the lab registry on it.
type host struct {
	node topology.Node
	addr string // address:port for SSH

	mu     sync.Mutex
	conn   *xssh.Client
	engine *client.Client
	fwd    net.Listener
}

func newHost(n topology.Node) *host {
	return &host{node: n, addr: net.JoinHostPort(n.SSH.Address, strconv.Itoa(n.SSH.Port))}
}

// name says which host this is in messages: "node w1 (admin@10.0.0.6:22)".
func (h *host) name() string {
	return fmt.Sprintf("node %s (%s@%s)", h.node.Name, h.node.SSH.User, h.addr)
}

// clientConfig reads the key and the host key policy. The key's content is
// never put in an error or a log line.
func clientConfig(n topology.Node, hostport string) (*xssh.ClientConfig, error) {
	s := n.SSH
	keyFile := topology.ExpandHome(s.IdentityFile)
	pem, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("node %s: reading identity file: %w", n.Name, err)
	}
	signer, err := xssh.ParsePrivateKey(pem)
	var missing *xssh.PassphraseMissingError
	switch {
	case errors.As(err, &missing):
		return nil, fmt.Errorf("node %s: identity file %s is protected by a passphrase, which the lab cannot ask for; use a key without one for the lab", n.Name, keyFile)
	case err != nil:
		return nil, fmt.Errorf("node %s: identity file %s is not a private key the lab can read", n.Name, keyFile)
	}
	cfg := &xssh.ClientConfig{
		User:    s.User,
		Auth:    []xssh.AuthMethod{xssh.PublicKeys(signer)},
		Timeout: DialTimeout,
	}
	if s.InsecureIgnoreHostKey {
		cfg.HostKeyCallback = xssh.InsecureIgnoreHostKey()
		return cfg, nil
	}
	known := topology.ExpandHome(s.KnownHosts)
	cb, err := knownhosts.New(known)
	if err != nil {
		return nil, fmt.Errorf("node %s: known hosts file: %w", n.Name, err)
	}
	algos := knownAlgorithms(cb, hostport)
	if len(algos) == 0 {
		return nil, fmt.Errorf("node %s: %s has no key for %s; add it (for example: ssh-keyscan -p %d %s >> %s, after checking the key), or set insecureIgnoreHostKey: true",
			n.Name, known, knownhosts.Normalize(hostport), s.Port, s.Address, s.KnownHosts)
	}
	cfg.HostKeyCallback = cb
	// Ask only for the key types known_hosts holds for this host: otherwise
	// the server may present another type, and the check fails although
	// the host is the right one.
	cfg.HostKeyAlgorithms = algos
	return cfg, nil
}

// knownAlgorithms lists the host key algorithms known_hosts has keys of for
// hostport, found by checking a key it cannot hold.
func knownAlgorithms(cb xssh.HostKeyCallback, hostport string) []string {
	var keyErr *knownhosts.KeyError
	err := cb(hostport, &net.TCPAddr{IP: net.IPv4zero}, probeKey{})
	if !errors.As(err, &keyErr) {
		return nil
	}
	var algos []string
	for _, k := range keyErr.Want {
		switch t := k.Key.Type(); t {
		case xssh.KeyAlgoRSA:
			algos = append(algos, xssh.KeyAlgoRSASHA512, xssh.KeyAlgoRSASHA256, xssh.KeyAlgoRSA)
		default:
			algos = append(algos, t)
		}
	}
	return algos
}

// probeKey is a public key no known_hosts file holds.
type probeKey struct{}

func (probeKey) Type() string                         { return "swarmlab-probe" }
func (probeKey) Marshal() []byte                      { return []byte("swarmlab-probe") }
func (probeKey) Verify([]byte, *xssh.Signature) error { return errors.New("probe key") }

// client returns the host's SSH connection, dialing it if there is none.
func (h *host) client(ctx context.Context) (*xssh.Client, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.conn != nil {
		return h.conn, nil
	}
	cfg, err := clientConfig(h.node, h.addr)
	if err != nil {
		return nil, err
	}
	d := net.Dialer{Timeout: DialTimeout}
	raw, err := d.DialContext(ctx, "tcp", h.addr)
	if err != nil {
		return nil, fmt.Errorf("%s: ssh: %w", h.name(), err)
	}
	c, chans, reqs, err := xssh.NewClientConn(raw, h.addr, cfg)
	if err != nil {
		raw.Close()
		return nil, fmt.Errorf("%s: ssh: %w", h.name(), err)
	}
	conn := xssh.NewClient(c, chans, reqs)
	h.conn = conn
	go func() {
		// Forget a connection that broke, so the next use dials again.
		conn.Wait()
		h.mu.Lock()
		if h.conn == conn {
			h.conn = nil
		}
		h.mu.Unlock()
	}()
	return conn, nil
}

// dial opens a channel to addr ("unix" socket path or "tcp" host:port) on the
// host, retrying once on a fresh connection if the old one had broken.
func (h *host) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	for attempt := 0; ; attempt++ {
		c, err := h.client(ctx)
		if err != nil {
			return nil, err
		}
		conn, err := c.DialContext(ctx, network, addr)
		if err == nil {
			return conn, nil
		}
		if attempt > 0 || ctx.Err() != nil {
			return nil, fmt.Errorf("%s: opening %s %s over ssh: %w", h.name(), network, addr, err)
		}
		c.Close()
		h.mu.Lock()
		if h.conn == c {
			h.conn = nil
		}
		h.mu.Unlock()
	}
}

// Engine returns a client for the host's Docker engine: API calls go over
// SSH to the engine's unix socket; nothing listens on TCP.
func (h *host) Engine() (*client.Client, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.engine != nil {
		return h.engine, nil
	}
	c, err := client.New(
		client.WithHost("unix://"+DockerSocket),
		client.WithDialContext(func(ctx context.Context, _, _ string) (net.Conn, error) {
			return h.dial(ctx, "unix", DockerSocket)
		}),
		client.WithAPIVersionNegotiation(),
	)
	if err != nil {
		return nil, fmt.Errorf("%s: docker client: %w", h.name(), err)
	}
	h.engine = c
	return c, nil
}

// ExecResult is the outcome of a command run on a host.
type ExecResult = common.ExecResult

// run runs a shell command line on the host.
func (h *host) run(ctx context.Context, cmdline string, stdin io.Reader) (ExecResult, error) {
	c, err := h.client(ctx)
	if err != nil {
		return ExecResult{}, err
	}
	s, err := c.NewSession()
	if err != nil {
		return ExecResult{}, fmt.Errorf("%s: ssh session: %w", h.name(), err)
	}
	defer s.Close()
	var out, errb bytes.Buffer
	s.Stdout, s.Stderr, s.Stdin = &out, &errb, stdin
	done := make(chan error, 1)
	go func() { done <- s.Run(cmdline) }()
	select {
	case <-ctx.Done():
		s.Close()
		return ExecResult{}, fmt.Errorf("%s: %s: %w", h.name(), firstLine(cmdline), ctx.Err())
	case err = <-done:
	}
	r := ExecResult{Stdout: out.String(), Stderr: errb.String()}
	var exit *xssh.ExitError
	switch {
	case errors.As(err, &exit):
		r.ExitCode = exit.ExitStatus()
	case err != nil:
		return r, fmt.Errorf("%s: %s: %w", h.name(), firstLine(cmdline), err)
	}
	return r, nil
}

// mustRun runs a command line and turns a non-zero exit into an error that
// quotes its stderr.
func (h *host) mustRun(ctx context.Context, what, cmdline string) (string, error) {
	r, err := h.run(ctx, cmdline, nil)
	if err != nil {
		return "", err
	}
	if r.ExitCode != 0 {
		msg := strings.TrimSpace(r.Stderr)
		if msg == "" {
			msg = strings.TrimSpace(r.Stdout)
		}
		return r.Stdout, fmt.Errorf("%s: %s: exit code %d: %s", h.name(), what, r.ExitCode, msg)
	}
	return r.Stdout, nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " ..."
	}
	return s
}

// forward returns a 127.0.0.1 address on this machine whose connections are
// carried over SSH to remote (host:port as seen from the host).
func (h *host) forward(remote string) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fwd != nil {
		return h.fwd.Addr().String(), nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("%s: forwarding a local port: %w", h.name(), err)
	}
	h.fwd = l
	go common.Serve(l, DialTimeout, func(ctx context.Context) (net.Conn, error) { return h.dial(ctx, "tcp", remote) })
	return l.Addr().String(), nil
}

// close ends the host's forward, engine client and SSH connection.
func (h *host) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fwd != nil {
		h.fwd.Close()
		h.fwd = nil
	}
	if h.engine != nil {
		h.engine.Close()
		h.engine = nil
	}
	if h.conn != nil {
		h.conn.Close()
		h.conn = nil
	}
}
