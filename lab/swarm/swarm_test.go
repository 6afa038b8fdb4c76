package swarm

import (
	"strings"
	"testing"

	"github.com/moby/moby/api/types/swarm"
)

func node(host, role string, state swarm.NodeState, leader bool, labels map[string]string) swarm.Node {
	n := swarm.Node{
		Description: swarm.NodeDescription{Hostname: host},
		Spec:        swarm.NodeSpec{Role: swarm.NodeRole(role), Availability: swarm.NodeAvailabilityActive, Annotations: swarm.Annotations{Labels: labels}},
		Status:      swarm.NodeStatus{State: state},
	}
	if role == Manager {
		n.ManagerStatus = &swarm.ManagerStatus{Leader: leader, Reachability: swarm.ReachabilityReachable}
	}
	return n
}

func TestDiff(t *testing.T) {
	members := []Member{
		{Name: "m1", Role: Manager, Availability: "active", Labels: map[string]string{"role": "manager"}},
		{Name: "w1", Role: Worker, Availability: "active"},
	}
	ready := []swarm.Node{
		node("m1", Manager, swarm.NodeStateReady, true, map[string]string{"role": "manager"}),
		node("w1", Worker, swarm.NodeStateReady, false, nil),
	}
	if p := Diff(ready, members); len(p) != 0 {
		t.Fatalf("converged swarm reported as %v", p)
	}
	for name, tc := range map[string]struct {
		nodes []swarm.Node
		want  string
	}{
		"missing node":  {ready[:1], "w1 has not joined"},
		"down node":     {[]swarm.Node{ready[0], node("w1", Worker, swarm.NodeStateDown, false, nil)}, "w1 is down"},
		"no leader":     {[]swarm.Node{node("m1", Manager, swarm.NodeStateReady, false, map[string]string{"role": "manager"}), ready[1]}, "0 leaders"},
		"missing label": {[]swarm.Node{node("m1", Manager, swarm.NodeStateReady, true, nil), ready[1]}, "m1 lacks label role=manager"},
		"extra node":    {append(ready[:2:2], node("x9", Worker, swarm.NodeStateReady, false, nil)), "unexpected node x9"},
		"wrong role":    {[]swarm.Node{ready[0], node("w1", Manager, swarm.NodeStateReady, false, nil)}, "w1 is a manager, want worker"},
	} {
		t.Run(name, func(t *testing.T) {
			p := strings.Join(Diff(tc.nodes, members), "; ")
			if !strings.Contains(p, tc.want) {
				t.Errorf("Diff = %q, want it to mention %q", p, tc.want)
			}
		})
	}
}

func TestPortString(t *testing.T) {
	p := swarm.PortConfig{PublishedPort: 8080, TargetPort: 80, Protocol: "tcp", PublishMode: swarm.PortConfigPublishModeHost}
	if got := PortString(p); got != "host:8080->80/tcp" {
		t.Errorf("got %q", got)
	}
}
