package docker

import (
	"context"
	"fmt"
	"strings"

	"github.com/moby/moby/client"

	"github.com/swarmlab/swarmlab/lab/provider/common"
)

// Leftovers lists what of lab is left on the host engine: each container,
// network and volume that carries its label ("container swarmlab-x-m1").
// Empty: nothing. (The blob caches of the registry and of the docker.io
// cache, shared by every lab, carry no lab's label.)
func (p *Provider) Leftovers(ctx context.Context, lab string) ([]string, error) {
	f := common.LabFilter(lab)
	cs, err := p.host.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("listing containers of lab %s: %w", lab, err)
	}
	ns, err := p.host.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("listing networks of lab %s: %w", lab, err)
	}
	vs, err := p.host.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("listing volumes of lab %s: %w", lab, err)
	}
	var left []string
	for _, c := range cs.Items {
		name := c.ID
		if len(c.Names) > 0 {
			name = strings.TrimPrefix(c.Names[0], "/")
		}
		left = append(left, fmt.Sprintf("container %s (%s)", name, c.State))
	}
	for _, n := range ns.Items {
		left = append(left, "network "+n.Name)
	}
	for _, v := range vs.Items {
		left = append(left, "volume "+v.Name)
	}
	return left, nil
}
