package ssh

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/swarmlab/swarmlab/lab/provider/common"
)

// Leftovers lists what of lab is left on its hosts: containers that carry
// its label (the registries), images pulled from the lab registry,
// partition rules, and a host still in a swarm (the hosts were in none
// when the lab was made: Create checks). Each entry names its node
// ("w1: container swarmlab-x-registry"). Empty: nothing. A host that does
// not answer is an error: what it holds is not known.
func (p *Provider) Leftovers(ctx context.Context, lab string) ([]string, error) {
	if lab != p.topo.Name {
		return nil, fmt.Errorf("ssh provider made for lab %s asked what is left of lab %s", p.topo.Name, lab)
	}
	var mu sync.Mutex
	var left []string
	add := func(h *host, format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		left = append(left, h.node.Name+": "+fmt.Sprintf(format, args...))
	}
	err := p.each(func(h *host) error {
		c, err := h.Engine()
		if err != nil {
			return err
		}
		info, err := c.Info(ctx, client.InfoOptions{})
		if err != nil {
			return fmt.Errorf("%s: docker info: %w", h.name(), err)
		}
		if st := info.Info.Swarm.LocalNodeState; st != swarm.LocalNodeStateInactive {
			add(h, "in a swarm (%s)", st)
		}
		cs, err := c.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: common.LabFilter(lab)})
		if err != nil {
			return fmt.Errorf("%s: listing the lab's containers: %w", h.name(), err)
		}
		for _, ct := range cs.Items {
			name := ct.ID
			if len(ct.Names) > 0 {
				name = strings.TrimPrefix(ct.Names[0], "/")
			}
			add(h, "container %s (%s)", name, ct.State)
		}
		imgs, err := c.ImageList(ctx, client.ImageListOptions{})
		if err != nil {
			return fmt.Errorf("%s: listing images: %w", h.name(), err)
		}
		for _, img := range imgs.Items {
			for _, tag := range img.RepoTags {
				if strings.HasPrefix(tag, RegistryAddr+"/") {
					add(h, "image %s", tag)
				}
			}
		}
		if h.partitioned(ctx) {
			add(h, "partition rules (iptables chain %s)", common.PartitionChain)
		}
		return nil
	})
	sort.Strings(left)
	return left, err
}
