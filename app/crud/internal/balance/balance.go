// Package balance is the client-side balancing the crud services do over a
// set of servers found by DNS (the gate over the storage tasks, storage over
// the database nodes): resolve the names again from time to time, take the
// servers in turn, and try one that just failed only after the others.
package balance

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"sync"
	"time"
)

// Pool is a set of servers, host:port, found by resolving Names.
type Pool struct {
	// Names are host:port; a host that is not an IP is resolved (Docker's
	// tasks.<service> answers every task's address).
	Names []string
	// Every is how long a resolution is used; 0 resolves at every Order.
	Every time.Duration
	// DownFor is how long a server that failed is tried after the others.
	DownFor time.Duration
	// Lookup resolves a host; net.DefaultResolver's if nil.
	Lookup func(ctx context.Context, host string) ([]string, error)

	mu         sync.Mutex
	addrs      []string
	resolvedAt time.Time
	next       int
	down       map[string]time.Time
}

// Order returns every server, for one request (or one connection): from the
// next in turn, servers that failed lately last. A failed resolution keeps
// the last list it had, if any.
func (p *Pool) Order(ctx context.Context) ([]string, error) {
	addrs, err := p.resolved(ctx)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	start := p.next % len(addrs)
	p.next++
	now := time.Now()
	var up, down []string
	for i := range addrs {
		a := addrs[(start+i)%len(addrs)]
		if now.Before(p.down[a]) {
			down = append(down, a)
		} else {
			up = append(up, a)
		}
	}
	return append(up, down...), nil
}

// Refresh makes the next Order resolve the names again (after every server
// failed: the tasks may have moved).
func (p *Pool) Refresh() {
	p.mu.Lock()
	p.resolvedAt = time.Time{}
	p.mu.Unlock()
}

func (p *Pool) resolved(ctx context.Context) ([]string, error) {
	p.mu.Lock()
	if p.addrs != nil && p.Every > 0 && time.Since(p.resolvedAt) < p.Every {
		addrs := p.addrs
		p.mu.Unlock()
		return addrs, nil
	}
	p.mu.Unlock()
	addrs, err := p.resolve(ctx)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		if p.addrs != nil && p.Every > 0 {
			return p.addrs, nil
		}
		return nil, err
	}
	p.addrs, p.resolvedAt = addrs, time.Now()
	return addrs, nil
}

func (p *Pool) resolve(ctx context.Context) ([]string, error) {
	lookup := p.Lookup
	if lookup == nil {
		lookup = net.DefaultResolver.LookupHost
	}
	set := map[string]bool{}
	var errs []error
	for _, name := range p.Names {
		host, port, err := net.SplitHostPort(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ips := []string{host}
		if net.ParseIP(host) == nil {
			if ips, err = lookup(ctx, host); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		for _, ip := range ips {
			set[net.JoinHostPort(ip, port)] = true
		}
	}
	if len(set) == 0 {
		return nil, fmt.Errorf("%v resolve to no address: %w", p.Names, errors.Join(errs...))
	}
	addrs := make([]string, 0, len(set))
	for a := range set {
		addrs = append(addrs, a)
	}
	sort.Strings(addrs)
	return addrs, nil
}

// Failed puts addr last for DownFor.
func (p *Pool) Failed(addr string) {
	if addr == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down == nil {
		p.down = map[string]time.Time{}
	}
	p.down[addr] = time.Now().Add(p.DownFor)
}

// Status is each server of the last resolution: "up", or "failed lately".
func (p *Pool) Status() map[string]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]string{}
	now := time.Now()
	for _, a := range p.addrs {
		out[a] = "up"
		if now.Before(p.down[a]) {
			out[a] = "failed lately"
		}
	}
	return out
}
