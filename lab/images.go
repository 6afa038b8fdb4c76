package lab

import (
	"context"
	"fmt"

	"github.com/swarmlab/swarmlab/lab/images"
	"github.com/swarmlab/swarmlab/lab/registry"
)

// LocalImage returns the host's reference for one of the lab's images
// ("redis", "node", ...).
func LocalImage(ctx context.Context, l *Lab, name string) (string, error) {
	img, ok := images.Get(name)
	if !ok {
		return "", fmt.Errorf("no lab image named %q", name)
	}
	return images.Resolve(ctx, l.Host, img)
}

// PushImage copies a host image into the lab registry as target
// ("team/app:v1"); nodes then pull it as "<registry>/team/app:v1".
func PushImage(ctx context.Context, l *Lab, local, target string) error {
	return registry.Push(ctx, l.Host, l.Cluster.Registry.Push, local, target)
}
