package main

import (
	"context"
	"net"
	"sort"
)

// Swarm tasks change addresses when they are rescheduled or restarted, so the peers are names
// looked up each time they are needed: tasks.db (Docker's DNS answers with the address of every
// running task of a dnsrr service), garbd, db1... A name that does not resolve (a service with
// no running task) stands for no member.

// resolvePeers returns the IPv4 addresses of names, once each, sorted, without this member's own
// (local).
func resolvePeers(ctx context.Context, lookup func(context.Context, string) ([]string, error), names []string, local map[string]bool) []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range names {
		addrs, err := lookup(ctx, n)
		if err != nil {
			continue
		}
		for _, a := range addrs {
			ip := net.ParseIP(a)
			if ip == nil || ip.To4() == nil || local[ip.String()] || seen[ip.String()] {
				continue
			}
			seen[ip.String()] = true
			out = append(out, ip.String())
		}
	}
	sort.Strings(out)
	return out
}

// localNets are this container's addresses with their networks.
func localNets() []*net.IPNet {
	addrs, _ := net.InterfaceAddrs()
	var out []*net.IPNet
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			out = append(out, n)
		}
	}
	return out
}

func localSet(nets []*net.IPNet) map[string]bool {
	out := map[string]bool{}
	for _, n := range nets {
		out[n.IP.String()] = true
	}
	return out
}

// nodeAddress is the address the peers reach this member at: the local one on the network of
// the first peer (a task has an address on each of its networks, and docker_gwbridge's is no
// good); with no peer, the first one.
func nodeAddress(nets []*net.IPNet, peers []string) string {
	for _, p := range peers {
		ip := net.ParseIP(p)
		for _, n := range nets {
			if n.Contains(ip) {
				return n.IP.String()
			}
		}
	}
	if len(nets) > 0 {
		return nets[0].IP.String()
	}
	return ""
}
