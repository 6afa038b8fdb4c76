//go:build integration

package worker_test

import (
	"net"
	"strconv"
	"sync"
	"testing"
)

// tcpProxy forwards loopback TCP connections to a server and can stop
// forwarding, as a stalled server or a partitioned network would: while it
// is paused, bytes and new connections are held, not refused, so a client
// waits on its request just as it would on a server that stopped answering.
type tcpProxy struct {
	l      net.Listener
	target string

	mu    sync.Mutex
	open  chan struct{} // closed while forwarding
	pairs map[*proxyPair]struct{}
}

// proxyPair is one client connection and, once dialed, its upstream.
type proxyPair struct {
	client net.Conn
	done   chan struct{} // closed by close

	mu     sync.Mutex
	server net.Conn
	closed bool
}

func (c *proxyPair) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	close(c.done)
	c.client.Close()
	if c.server != nil {
		c.server.Close()
	}
}

// setServer records the upstream; false (and server closed) if c was
// closed meanwhile.
func (c *proxyPair) setServer(server net.Conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		server.Close()
		return false
	}
	c.server = server
	return true
}

// startProxy listens on a free loopback port and forwards to target
// (host:port) until the test ends.
func startProxy(tb testing.TB, target string) *tcpProxy {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	open := make(chan struct{})
	close(open)
	p := &tcpProxy{l: l, target: target, open: open, pairs: map[*proxyPair]struct{}{}}
	go p.accept()
	tb.Cleanup(func() {
		l.Close()
		p.Sever()
	})
	return p
}

// Host and Port are where clients connect.
func (p *tcpProxy) Host() string { return "127.0.0.1" }
func (p *tcpProxy) Port() int    { return p.l.Addr().(*net.TCPAddr).Port }
func (p *tcpProxy) Addr() string { return net.JoinHostPort(p.Host(), strconv.Itoa(p.Port())) }

// Pause stops forwarding in both directions: what is sent from now on waits
// in the proxy (a chunk already being forwarded may still get through).
func (p *tcpProxy) Pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.open:
		p.open = make(chan struct{})
	default: // already paused
	}
}

// Resume forwards again, held bytes first.
func (p *tcpProxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.open:
	default:
		close(p.open)
	}
}

// Sever closes every connection, dropping whatever it holds, as a server
// does with the connections of a client that died: nothing held is
// forwarded after that. New connections are served as before.
func (p *tcpProxy) Sever() {
	p.mu.Lock()
	pairs := p.pairs
	p.pairs = map[*proxyPair]struct{}{}
	p.mu.Unlock()
	for c := range pairs {
		c.close()
	}
}

// await blocks while the proxy is paused; false if c was closed meanwhile.
func (p *tcpProxy) await(c *proxyPair) bool {
	p.mu.Lock()
	open := p.open
	p.mu.Unlock()
	select {
	case <-open:
		select {
		case <-c.done:
			return false
		default:
			return true
		}
	case <-c.done:
		return false
	}
}

func (p *tcpProxy) accept() {
	for {
		conn, err := p.l.Accept()
		if err != nil {
			return
		}
		c := &proxyPair{client: conn, done: make(chan struct{})}
		p.mu.Lock()
		p.pairs[c] = struct{}{}
		p.mu.Unlock()
		go p.serve(c)
	}
}

func (p *tcpProxy) serve(c *proxyPair) {
	defer func() {
		c.close()
		p.mu.Lock()
		delete(p.pairs, c)
		p.mu.Unlock()
	}()
	if !p.await(c) { // a paused server does not answer new connections either
		return
	}
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	if !c.setServer(server) { // severed while dialing
		return
	}
	go func() {
		p.pipe(c, c.client, server)
		c.close()
	}()
	p.pipe(c, server, c.client)
}

// pipe copies src to dst, chunk by chunk, each only while forwarding.
func (p *tcpProxy) pipe(c *proxyPair, dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.await(c) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
