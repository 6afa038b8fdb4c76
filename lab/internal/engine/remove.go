package engine

import (
	"context"
	"errors"
	"fmt"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// RemoveLabelled removes the containers (with their anonymous volumes), then
// the volumes, then the networks that filter selects, going on past errors
// and returning them all; what is already gone is no error.
func RemoveLabelled(ctx context.Context, host client.APIClient, filter client.Filters) error {
	var errs []error
	cs, err := host.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: filter})
	if err != nil {
		return fmt.Errorf("listing containers: %w", err)
	}
	for _, c := range cs.Items {
		if _, err := host.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("removing container %s: %w", c.ID, err))
		}
	}
	vs, err := host.VolumeList(ctx, client.VolumeListOptions{Filters: filter})
	if err != nil {
		errs = append(errs, fmt.Errorf("listing volumes: %w", err))
	} else {
		for _, v := range vs.Items {
			if _, err := host.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("removing volume %s: %w", v.Name, err))
			}
		}
	}
	ns, err := host.NetworkList(ctx, client.NetworkListOptions{Filters: filter})
	if err != nil {
		errs = append(errs, fmt.Errorf("listing networks: %w", err))
	} else {
		for _, n := range ns.Items {
			if _, err := host.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("removing network %s: %w", n.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}
