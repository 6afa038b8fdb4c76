package docker

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/volume"
	"github.com/moby/moby/client"

	"github.com/swarmlab/swarmlab/lab/provider/common"
	"github.com/swarmlab/swarmlab/lab/topology"
)

// labelledEngine holds containers, networks and volumes, each labelled
// with a lab, and answers lists filtered by the lab label as an engine
// does; any other call panics.
type labelledEngine struct {
	client.APIClient
	containers map[string]string // name -> lab
	networks   map[string]string
	volumes    map[string]string
}

// of returns the names whose lab the filter asks for.
func of(t map[string]string, f client.Filters) []string {
	var out []string
	for name, lab := range t {
		if _, ok := f["label"][common.LabelLab+"="+lab]; ok {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func (e *labelledEngine) ContainerList(_ context.Context, o client.ContainerListOptions) (client.ContainerListResult, error) {
	var r client.ContainerListResult
	for _, n := range of(e.containers, o.Filters) {
		r.Items = append(r.Items, container.Summary{ID: "id-" + n, Names: []string{"/" + n}, State: container.StateExited})
	}
	return r, nil
}

func (e *labelledEngine) NetworkList(_ context.Context, o client.NetworkListOptions) (client.NetworkListResult, error) {
	var r client.NetworkListResult
	for _, n := range of(e.networks, o.Filters) {
		r.Items = append(r.Items, network.Summary{Network: network.Network{Name: n}})
	}
	return r, nil
}

func (e *labelledEngine) VolumeList(_ context.Context, o client.VolumeListOptions) (client.VolumeListResult, error) {
	var r client.VolumeListResult
	for _, n := range of(e.volumes, o.Filters) {
		r.Items = append(r.Items, volume.Volume{Name: n})
	}
	return r, nil
}

func TestLeftoversAreWhatCarriesTheLabsLabel(t *testing.T) {
	e := &labelledEngine{
		containers: map[string]string{"swarmlab-a-m1": "a", "swarmlab-ab-m1": "ab"},
		networks:   map[string]string{"swarmlab-a": "a"},
		volumes:    map[string]string{"swarmlab-a-m1": "a", "swarmlab-b-w1": "b"},
	}
	p := New(e, "", "")
	left, err := p.Leftovers(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"container swarmlab-a-m1 (exited)", "network swarmlab-a", "volume swarmlab-a-m1"}
	if !slices.Equal(left, want) {
		t.Errorf("Leftovers(a) = %q, want %q", left, want)
	}
	if left, err := p.Leftovers(context.Background(), "c"); err != nil || len(left) != 0 {
		t.Errorf("Leftovers(c) = %q, %v; want nothing", left, err)
	}
}

// lateEngine is a labelledEngine whose engine finishes a create call of
// the cancelled run only after the first list: the container appears on
// the second list. Removals are recorded and take the container away.
type lateEngine struct {
	labelledEngine
	lists   int
	late    string // container that appears on the second list
	removed []string
}

func (e *lateEngine) ContainerList(ctx context.Context, o client.ContainerListOptions) (client.ContainerListResult, error) {
	e.lists++
	if e.lists == 2 && e.late != "" {
		e.containers[e.late] = "a"
	}
	return e.labelledEngine.ContainerList(ctx, o)
}

func (e *lateEngine) ContainerRemove(_ context.Context, id string, _ client.ContainerRemoveOptions) (client.ContainerRemoveResult, error) {
	e.removed = append(e.removed, id)
	delete(e.containers, strings.TrimPrefix(id, "id-"))
	return client.ContainerRemoveResult{}, nil
}

// TestDeleteRunSweepsAContainerCreatedAfterItsList: an interrupted up
// left a "created" registry container, made by a create call still in
// flight when the cleanup listed the run's containers. DeleteRun must
// look again until the run's containers stay gone. (Red with a single
// sweep: the late container is never removed.)
func TestDeleteRunSweepsAContainerCreatedAfterItsList(t *testing.T) {
	e := &lateEngine{labelledEngine: labelledEngine{
		containers: map[string]string{"swarmlab-a-m1": "a"},
		networks:   map[string]string{}, volumes: map[string]string{},
	}, late: "swarmlab-a-registry"}
	p := New(e, "", "")
	if err := p.DeleteRun(context.Background(), "a", "run1"); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(e.removed, "id-swarmlab-a-registry") || !slices.Contains(e.removed, "id-swarmlab-a-m1") {
		t.Errorf("removed %q, want both the listed container and the late one", e.removed)
	}
	if len(e.containers) != 0 {
		t.Errorf("left %v", e.containers)
	}
}

// racingEngine lists no network, but refuses 10.99.0.0/24 as overlapping:
// another lab's network, being created at the same moment, holds it.
type racingEngine struct {
	client.APIClient
	tried []string
}

func (e *racingEngine) NetworkList(context.Context, client.NetworkListOptions) (client.NetworkListResult, error) {
	return client.NetworkListResult{}, nil
}

func (e *racingEngine) NetworkCreate(_ context.Context, _ string, o client.NetworkCreateOptions) (client.NetworkCreateResult, error) {
	sub := o.IPAM.Config[0].Subnet.String()
	e.tried = append(e.tried, sub)
	if sub == "10.99.0.0/24" {
		return client.NetworkCreateResult{}, errors.New("Error response from daemon: Pool overlaps with other one on this address space")
	}
	return client.NetworkCreateResult{ID: "n1"}, nil
}

// TestCreateNetworkMovesOnFromARefusedSubnet: three workshop labs started
// at once; the third was refused 10.99.0.0/24 five times, because the lab
// that held it was not listed yet. (Red when a refused subnet is picked
// again: all attempts go to 10.99.0.0/24.)
func TestCreateNetworkMovesOnFromARefusedSubnet(t *testing.T) {
	e := &racingEngine{}
	p := New(e, "", "")
	got, err := p.createNetwork(context.Background(), &topology.Topology{Name: "c"}, nil)
	if err != nil {
		t.Fatalf("createNetwork: %v (tried %v)", err, e.tried)
	}
	if got.String() != "10.99.1.0/24" || !slices.Equal(e.tried, []string{"10.99.0.0/24", "10.99.1.0/24"}) {
		t.Errorf("got %v after trying %v; want 10.99.1.0/24 after one refusal", got, e.tried)
	}
}
