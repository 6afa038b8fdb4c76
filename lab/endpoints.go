package lab

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// URLLabel prefixes service labels that name a URL of the service, with
// {addr} standing for a node address it answers on:
//
//	io.swarmlab.url.vote: "http://{addr}/"
const URLLabel = "io.swarmlab.url."

// Endpoint is one place a published service answers.
type Endpoint struct {
	Service string `json:"service"`
	Name    string `json:"name"` // from the URL label, or "port 8080"
	URL     string `json:"url"`
}

// Endpoints lists where published services answer: with the routing mesh
// on any node, in host mode on the nodes that run a task.
func (l *Lab) Endpoints(ctx context.Context) ([]Endpoint, error) {
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
		addrs, err := l.serviceAddrs(ctx, mgr, s, hostByID)
		if err != nil {
			return nil, err
		}
		if len(addrs) == 0 {
			continue
		}
		named := false
		for k, tmpl := range s.Spec.Labels {
			if name, ok := strings.CutPrefix(k, URLLabel); ok {
				named = true
				out = append(out, Endpoint{Service: s.Spec.Name, Name: name, URL: strings.ReplaceAll(tmpl, "{addr}", addrs[0])})
			}
		}
		if named {
			continue
		}
		for _, p := range s.Endpoint.Ports {
			out = append(out, Endpoint{Service: s.Spec.Name, Name: fmt.Sprintf("port %d", p.PublishedPort),
				URL: fmt.Sprintf("http://%s:%d/", addrs[0], p.PublishedPort)})
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

// serviceAddrs returns the node addresses a published service answers on.
func (l *Lab) serviceAddrs(ctx context.Context, mgr client.APIClient, s swarm.Service, hostByID map[string]string) ([]string, error) {
	mesh := false
	for _, p := range s.Endpoint.Ports {
		if p.PublishMode != swarm.PortConfigPublishModeHost {
			mesh = true
		}
	}
	if mesh {
		var addrs []string
		for _, n := range l.Cluster.Nodes {
			addrs = append(addrs, n.Addr)
		}
		return addrs, nil
	}
	tasks, err := mgr.TaskList(ctx, client.TaskListOptions{Filters: make(client.Filters).Add("service", s.ID).Add("desired-state", "running")})
	if err != nil {
		return nil, fmt.Errorf("listing tasks of %s: %w", s.Spec.Name, err)
	}
	var addrs []string
	for _, t := range tasks.Items {
		if n, err := l.Cluster.Node(hostByID[t.NodeID]); err == nil {
			addrs = append(addrs, n.Addr)
		}
	}
	sort.Strings(addrs)
	return addrs, nil
}
