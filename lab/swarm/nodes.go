package swarm

import (
	"context"
	"fmt"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// A hostname can have more than one entry in a swarm's node list: a node
// that left and joined again (a rejoined manager, a rebuilt machine) is a
// new node, and its old entry stays, Down, until it is removed. Wherever a
// node is looked up by hostname, a Ready entry wins over a stale one; among
// entries none of which is Ready, the first listed is kept. The rule is
// written once, in byName.

// ByHostname indexes nodes by hostname, one entry each (see above).
func ByHostname(nodes []swarm.Node) map[string]swarm.Node {
	return byName(nodes, func(n swarm.Node) (string, bool) {
		return n.Description.Hostname, n.Status.State == swarm.NodeStateReady
	})
}

// NodeByHostname lists the swarm's nodes through mgr and returns the entry
// of hostname, as ByHostname picks it.
func NodeByHostname(ctx context.Context, mgr client.APIClient, hostname string) (swarm.Node, error) {
	nodes, err := mgr.NodeList(ctx, client.NodeListOptions{})
	if err != nil {
		return swarm.Node{}, fmt.Errorf("listing nodes: %w", err)
	}
	n, ok := ByHostname(nodes.Items)[hostname]
	if !ok {
		return swarm.Node{}, fmt.Errorf("node %s is not in the swarm", hostname)
	}
	return n, nil
}

// NodesByName indexes the status's nodes by name, one entry each, as
// ByHostname does. st may be nil (no status: no nodes).
func (st *Status) NodesByName() map[string]NodeStatus {
	if st == nil {
		return map[string]NodeStatus{}
	}
	return byName(st.Nodes, func(n NodeStatus) (string, bool) {
		return n.Name, n.State == string(swarm.NodeStateReady)
	})
}

// byName keeps one entry per name: the first, unless a later one is ready.
func byName[T any](entries []T, key func(T) (name string, ready bool)) map[string]T {
	out := make(map[string]T, len(entries))
	for _, e := range entries {
		name, ready := key(e)
		if _, seen := out[name]; !seen || ready {
			out[name] = e
		}
	}
	return out
}
