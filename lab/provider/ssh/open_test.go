package ssh

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/swarmlab/swarmlab/lab/provider"
	"github.com/swarmlab/swarmlab/lab/topology"
)

func sshTopology(name string, addrs ...string) *topology.Topology {
	t := &topology.Topology{APIVersion: topology.APIVersion, Kind: topology.Kind, Name: name,
		Provider: topology.Provider{Type: topology.ProviderSSH}}
	for i, a := range addrs {
		role := topology.RoleWorker
		if i == 0 {
			role = topology.RoleManager
		}
		t.Nodes = append(t.Nodes, topology.Node{Name: "n" + string(rune('1'+i)), Role: role,
			SSH: &topology.SSH{Address: a, User: "admin", Port: 22, AdvertiseAddr: a}})
	}
	return t
}

// Open opens the hosts of the recorded topology: a record of another lab,
// without a topology, or naming other hosts is refused before any host is
// dialled.
func TestOpenTakesTheHostsOfTheRecord(t *testing.T) {
	p := New(sshTopology("s", "10.0.0.1", "10.0.0.2"), nil, "registry")
	ctx := context.Background()
	if _, err := p.Open(ctx, provider.Record{Name: "other", Topology: sshTopology("other", "10.0.0.1")}); !errors.Is(err, provider.ErrNotFound) {
		t.Errorf("another lab: %v", err)
	}
	if _, err := p.Open(ctx, provider.Record{Name: "s"}); err == nil || !strings.Contains(err.Error(), "no topology") {
		t.Errorf("no topology: %v", err)
	}
	if _, err := p.Open(ctx, provider.Record{Name: "s", Topology: sshTopology("s", "10.0.0.1", "10.0.0.3")}); err == nil || !strings.Contains(err.Error(), "recorded node n2 is not host n2") {
		t.Errorf("other hosts: %v", err)
	}
	if _, err := p.Open(ctx, provider.Record{Name: "s", Topology: sshTopology("s", "10.0.0.1")}); err == nil || !strings.Contains(err.Error(), "1 nodes, this provider 2 hosts") {
		t.Errorf("fewer nodes: %v", err)
	}
	if err := p.serves(sshTopology("s", "10.0.0.1", "10.0.0.2")); err != nil {
		t.Errorf("the same hosts: %v", err)
	}
}
