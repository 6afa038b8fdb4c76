package lab

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/swarmlab/swarmlab/lab/provider"
	"github.com/swarmlab/swarmlab/lab/provider/common"
)

// Service labels that begin with common.LabelURLPrefix name a URL of the
// service, with {addr} standing for a node address it answers on:
//
//	io.swarmlab.url.vote: "http://{addr}/"
//	io.swarmlab.url.results: "http://{addr}:8081/"
//
// Where this machine reaches the port is the provider's to say
// (provider.Cluster.PublishedAddr): {addr} and the port after it are
// replaced by the address it gives. What people are given for a bridged
// lab is that port on 127.0.0.1 instead, where its forwarder serves it
// (UserEndpoints; forward.go).

// Endpoint is one place a published service answers.
type Endpoint struct {
	Service string `json:"service"`
	Name    string `json:"name"` // from the URL label, or "port 8080"
	URL     string `json:"url"`
}

// Endpoints lists where published services answer for this process: with
// the routing mesh on any node, in host mode on the nodes that run a task,
// at the address the provider gives (PublishedAddr).
func (l *Lab) Endpoints(ctx context.Context) ([]Endpoint, error) {
	return l.endpoints(ctx, l.cluster.PublishedAddr)
}

// UserEndpoints is Endpoints as people on this machine are to open them:
// for a bridged lab, each port on 127.0.0.1 where the lab's forwarder
// serves it. A forwarder that does not serve a port yet (one published
// since it last looked) is given forwardCatchUp to start; a port no
// forwarder serves keeps the address Endpoints gives, which works from this
// machine while the lab lives.
func (l *Lab) UserEndpoints(ctx context.Context) ([]Endpoint, error) {
	if !l.bridged() {
		return l.Endpoints(ctx)
	}
	deadline := time.Now().Add(forwardCatchUp)
	for {
		served, pid := readForwards(l.name)
		missing := false
		eps, err := l.endpoints(ctx, func(node string, port uint16) (string, error) {
			addr, err := l.cluster.PublishedAddr(node, port)
			if err != nil {
				return "", err
			}
			if local, ok := served[addr]; ok {
				return local, nil
			}
			missing = true
			return addr, nil
		})
		if err != nil || !missing || pid == 0 || !time.Now().Before(deadline) {
			return eps, err
		}
		select {
		case <-ctx.Done():
			return eps, nil
		case <-time.After(forwardCatchUpPoll):
		}
	}
}

// publishedAt says where a node's published port answers.
type publishedAt func(node string, port uint16) (string, error)

// endpoints is Endpoints with each address from at.
func (l *Lab) endpoints(ctx context.Context, at publishedAt) ([]Endpoint, error) {
	mgr, _, err := l.Manager(ctx)
	if err != nil {
		return nil, err
	}
	svcs, err := mgr.ServiceList(ctx, client.ServiceListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing services: %w", err)
	}
	nodes, err := mgr.NodeList(ctx, client.NodeListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing nodes: %w", err)
	}
	hostByID := map[string]string{}
	for _, n := range nodes.Items {
		hostByID[n.ID] = n.Description.Hostname
	}
	var out []Endpoint
	for _, s := range svcs.Items {
		if len(s.Endpoint.Ports) == 0 {
			continue
		}
		nodes, err := l.serviceNodes(ctx, mgr, s, hostByID)
		if err != nil {
			return nil, err
		}
		if len(nodes) == 0 {
			continue
		}
		named := false
		for k, tmpl := range s.Spec.Labels {
			if name, ok := strings.CutPrefix(k, common.LabelURLPrefix); ok {
				named = true
				u, err := fillURL(tmpl, nodes[0], at)
				if err != nil {
					return nil, err
				}
				out = append(out, Endpoint{Service: s.Spec.Name, Name: name, URL: u})
			}
		}
		if named {
			continue
		}
		for _, p := range s.Endpoint.Ports {
			addr, err := at(nodes[0], uint16(p.PublishedPort))
			if err != nil {
				return nil, err
			}
			out = append(out, Endpoint{Service: s.Spec.Name, Name: fmt.Sprintf("port %d", p.PublishedPort),
				URL: fmt.Sprintf("http://%s/", addr)})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Service != out[j].Service {
			return out[i].Service < out[j].Service
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// serviceNodes returns the nodes a published service answers on: every
// node with the routing mesh, else those running a task, by address.
func (l *Lab) serviceNodes(ctx context.Context, mgr client.APIClient, s swarm.Service, hostByID map[string]string) ([]string, error) {
	mesh := false
	for _, p := range s.Endpoint.Ports {
		if p.PublishMode != swarm.PortConfigPublishModeHost {
			mesh = true
		}
	}
	if mesh {
		var names []string
		for _, n := range l.cluster.Nodes() {
			names = append(names, n.Name())
		}
		return names, nil
	}
	tasks, err := mgr.TaskList(ctx, client.TaskListOptions{Filters: make(client.Filters).Add("service", s.ID).Add("desired-state", "running")})
	if err != nil {
		return nil, fmt.Errorf("listing tasks of %s: %w", s.Spec.Name, err)
	}
	var found []provider.Node
	for _, t := range tasks.Items {
		if n, err := l.Node(hostByID[t.NodeID]); err == nil {
			found = append(found, n)
		}
	}
	sort.Slice(found, func(i, j int) bool { return found[i].Addr() < found[j].Addr() })
	names := make([]string, len(found))
	for i, n := range found {
		names[i] = n.Name()
	}
	return names, nil
}

// fillURL puts where node's port answers (at) into a URL label's
// template: "{addr}:8081" becomes the address at gives for port 8081, a
// bare "{addr}" that for the scheme's port (80, or 443 for https), written
// without the port when it is the scheme's.
func fillURL(tmpl, node string, at publishedAt) (string, error) {
	before, after, ok := strings.Cut(tmpl, "{addr}")
	if !ok {
		return tmpl, nil
	}
	port, def := uint16(80), uint16(80)
	if strings.HasPrefix(before, "https://") {
		port, def = 443, 443
	}
	if rest, ok := strings.CutPrefix(after, ":"); ok {
		digits := rest[:len(rest)-len(strings.TrimLeft(rest, "0123456789"))]
		if p, err := strconv.ParseUint(digits, 10, 16); err == nil {
			port, after = uint16(p), rest[len(digits):]
		}
	}
	addr, err := at(node, port)
	if err != nil {
		return "", err
	}
	hostOnly := addr
	if host, p, err := net.SplitHostPort(addr); err == nil {
		hostOnly = host
		if strings.Contains(host, ":") {
			hostOnly = "[" + host + "]"
		}
		if p == strconv.Itoa(int(def)) {
			addr = hostOnly
		}
	}
	// Any further {addr} is the same node, with its own port if it has one.
	return before + addr + strings.ReplaceAll(after, "{addr}", hostOnly), nil
}
