package docker

import (
	"context"
	"slices"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/volume"
	"github.com/moby/moby/client"

	"github.com/swarmlab/swarmlab/lab/provider/common"
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
