package common

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Serve accepts connections on l until it is closed, and carries each to a
// connection dial makes (given timeout to make it): how a provider gives a
// target it reaches in its own way (over SSH, through a relay container) an
// address on this machine. Each direction is copied until its end, which is
// passed on as a half-close where the other side has one, so a request
// whose answer comes after the client stopped sending still gets it.
func Serve(l net.Listener, timeout time.Duration, dial func(context.Context) (net.Conn, error)) {
	for {
		local, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer local.Close()
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			remote, err := dial(ctx)
			cancel()
			if err != nil {
				return
			}
			defer remote.Close()
			done := make(chan struct{})
			go func() {
				io.Copy(remote, local)
				closeWrite(remote)
				close(done)
			}()
			io.Copy(local, remote)
			closeWrite(local)
			<-done
		}()
	}
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

// Loopback gives targets (host:port strings its dial understands) addresses
// on this machine's 127.0.0.1: one listener per target, made on first use
// and kept until Close, so a target keeps its address for as long as the
// Loopback lives. Each connection is carried by Serve to one that dial
// makes for the target. Nothing listens beyond the loopback.
type Loopback struct {
	what    string // whose listeners, for errors: "relay swarmlab-x-relay"
	timeout time.Duration
	dial    func(ctx context.Context, target string) (net.Conn, error)

	mu        sync.Mutex
	listeners map[string]net.Listener // by target
	closed    bool
}

// NewLoopback returns a Loopback whose connections dial makes, given
// timeout to make each.
func NewLoopback(what string, timeout time.Duration, dial func(ctx context.Context, target string) (net.Conn, error)) *Loopback {
	return &Loopback{what: what, timeout: timeout, dial: dial, listeners: map[string]net.Listener{}}
}

// Addr is the local "127.0.0.1:port" that reaches target.
func (b *Loopback) Addr(target string) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return "", fmt.Errorf("%s: closed", b.what)
	}
	if l, ok := b.listeners[target]; ok {
		return l.Addr().String(), nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("%s: listening on 127.0.0.1 for %s: %w", b.what, target, err)
	}
	b.listeners[target] = l
	go Serve(l, b.timeout, func(ctx context.Context) (net.Conn, error) { return b.dial(ctx, target) })
	return l.Addr().String(), nil
}

// Forwards lists the local address of each target's listener.
func (b *Loopback) Forwards() map[string]string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]string, len(b.listeners))
	for t, l := range b.listeners {
		out[t] = l.Addr().String()
	}
	return out
}

// Close closes every listener; connections in flight end with their peers.
func (b *Loopback) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for t, l := range b.listeners {
		l.Close()
		delete(b.listeners, t)
	}
	return nil
}
