package swarm

import (
	"context"
	"fmt"
	"sort"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// NodeStatus is one swarm node as its managers see it.
type NodeStatus struct {
	Name         string            `json:"name"`
	ID           string            `json:"id"`
	Role         string            `json:"role"`
	State        string            `json:"state"`
	Availability string            `json:"availability"`
	Leader       bool              `json:"leader,omitempty"`
	Reachability string            `json:"reachability,omitempty"`
	Addr         string            `json:"addr"`
	Engine       string            `json:"engineVersion"`
	Labels       map[string]string `json:"labels,omitempty"`
}

// ServiceStatus is one service and how many of its tasks run.
type ServiceStatus struct {
	Name    string   `json:"name"`
	Image   string   `json:"image"`
	Mode    string   `json:"mode"`
	Running uint64   `json:"running"`
	Desired uint64   `json:"desired"`
	Ports   []string `json:"ports,omitempty"`
}

// Status is the swarm seen from one manager.
type Status struct {
	Leader   string            `json:"leader"`
	Labels   map[string]string `json:"labels,omitempty"`
	Nodes    []NodeStatus      `json:"nodes"`
	Services []ServiceStatus   `json:"services"`
}

// GetStatus reads nodes and services from mgr.
func GetStatus(ctx context.Context, mgr client.APIClient) (*Status, error) {
	st := &Status{}
	sw, err := mgr.SwarmInspect(ctx, client.SwarmInspectOptions{})
	if err != nil {
		return nil, fmt.Errorf("inspecting swarm: %w", err)
	}
	st.Labels = sw.Swarm.Spec.Labels
	nodes, err := mgr.NodeList(ctx, client.NodeListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing nodes: %w", err)
	}
	for _, n := range nodes.Items {
		ns := NodeStatus{
			Name: n.Description.Hostname, ID: n.ID, Role: string(n.Spec.Role),
			State: string(n.Status.State), Availability: string(n.Spec.Availability),
			Addr: n.Status.Addr, Engine: n.Description.Engine.EngineVersion, Labels: n.Spec.Labels,
		}
		if m := n.ManagerStatus; m != nil {
			ns.Leader, ns.Reachability = m.Leader, string(m.Reachability)
			if m.Leader {
				st.Leader = ns.Name
			}
		}
		st.Nodes = append(st.Nodes, ns)
	}
	sort.Slice(st.Nodes, func(i, j int) bool { return st.Nodes[i].Name < st.Nodes[j].Name })
	svcs, err := mgr.ServiceList(ctx, client.ServiceListOptions{Status: true})
	if err != nil {
		return nil, fmt.Errorf("listing services: %w", err)
	}
	for _, s := range svcs.Items {
		ss := ServiceStatus{Name: s.Spec.Name, Mode: "replicated"}
		if s.Spec.TaskTemplate.ContainerSpec != nil {
			ss.Image = s.Spec.TaskTemplate.ContainerSpec.Image
		}
		if s.Spec.Mode.Global != nil {
			ss.Mode = "global"
		}
		if s.ServiceStatus != nil {
			ss.Running, ss.Desired = s.ServiceStatus.RunningTasks, s.ServiceStatus.DesiredTasks
		}
		for _, p := range s.Endpoint.Ports {
			ss.Ports = append(ss.Ports, PortString(p))
		}
		st.Services = append(st.Services, ss)
	}
	sort.Slice(st.Services, func(i, j int) bool { return st.Services[i].Name < st.Services[j].Name })
	return st, nil
}

// PortString renders a published port like the docker CLI: "*:8080->80/tcp"
// (ingress) or "host:8080->80/tcp".
func PortString(p swarm.PortConfig) string {
	where := "*"
	if p.PublishMode == swarm.PortConfigPublishModeHost {
		where = "host"
	}
	return fmt.Sprintf("%s:%d->%d/%s", where, p.PublishedPort, p.TargetPort, p.Protocol)
}
