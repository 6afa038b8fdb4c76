package lab

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/swarmlab/swarmlab/lab/internal/registry"
	"github.com/swarmlab/swarmlab/lab/provider"
)

// Loaded is what Stacks.Load did with one image.
type Loaded struct {
	// Image is the image as given ("myapp:1").
	Image string `json:"image"`
	// As is the reference nodes pull it by: the name itself where the lab
	// registry is their docker.io mirror ("myapp:1"), else the name in the
	// lab registry ("127.0.0.1:5000/myapp:1").
	As string `json:"as"`
	// ID is the image's ID on this machine's engine.
	ID string `json:"id"`
	// Unchanged is set when the lab registry served this very image under
	// that name already, so nothing was pushed.
	Unchanged bool `json:"unchanged"`
	// Took is how long the load took.
	Took time.Duration `json:"took"`
}

// Load copies an image from this machine's engine (the lab's Host) into the
// lab registry, as `kind load docker-image` puts one on kind's nodes: a
// stack's plain `image: myapp:1` then runs on every node. Where the
// registry is the nodes' docker.io mirror, a docker.io name goes in under
// the path the mirror serves it at ("myapp:1" as library/myapp:1), so nodes
// resolve it by its own name; a name in the lab registry
// ("registry:5000/team/app:1") goes in under its path there. A name of
// another registry (ghcr.io/...) is refused: nodes pull it from that
// registry, never from the lab's. Where each node has a registry of its
// own (ssh), the image goes to each. A registry that already serves the
// name as this image (see registry.Has) is not pushed to again, and Loaded
// says Unchanged.
func (s Stacks) Load(ctx context.Context, image string) (Loaded, error) {
	l := s.l
	start := time.Now()
	res := Loaded{Image: image}
	reg := l.cluster.Registry()
	target, as, err := loadTarget(reg, image)
	if err != nil {
		return res, err
	}
	res.As = as
	if len(reg.Push) == 0 {
		return res, fmt.Errorf("lab %s has no registry address to load %s into; is its registry running? (swarmlab status %s)", l.name, image, l.name)
	}
	inspect, err := l.host.ImageInspect(ctx, image)
	switch {
	case cerrdefs.IsNotFound(err):
		return res, fmt.Errorf("image %s is not in this machine's engine (%s), which load copies it from; build or pull it there first (docker build -t %s . or docker pull %s), then load it again",
			image, l.host.DaemonHost(), image, image)
	case err != nil:
		return res, fmt.Errorf("inspecting image %s on this machine's engine (%s): %w", image, l.host.DaemonHost(), err)
	}
	res.ID = inspect.ID
	var mu sync.Mutex
	pushed := 0
	query := reg.QueryAddrs()
	err = eachAtOnce(ctx, len(reg.Push), 0, func(i int) error {
		sent, err := registry.PushIfMissing(ctx, l.host, reg.Push[i], query[i], image, target)
		if len(sent) > 0 {
			mu.Lock()
			pushed++
			mu.Unlock()
		}
		if err != nil {
			return fmt.Errorf("loading %s into lab %s's registry at %s: %w", image, l.name, reg.Push[i], err)
		}
		return nil
	})
	res.Unchanged = err == nil && pushed == 0
	res.Took = time.Since(start)
	return res, err
}

// loadTarget is where an image loaded into registry reg goes (its path
// there: "library/myapp:1") and the reference nodes pull it by.
func loadTarget(reg provider.Registry, image string) (target, as string, err error) {
	if image == "" {
		return "", "", fmt.Errorf("an empty image name; want a name and tag, such as myapp:1")
	}
	if strings.Contains(image, "@") {
		return "", "", fmt.Errorf("%s names a digest; load takes a name and tag (myapp:1), the name a stack's image: asks for", image)
	}
	r := parseImageRef(image)
	switch {
	case r.domain == dockerHub && reg.Mirror:
		return r.target(), image, nil
	case r.domain == dockerHub:
		// Nodes pull docker.io names themselves: the image is theirs
		// under the lab registry's name only.
		target = strings.TrimPrefix(r.repo, "library/") + r.ref
		return target, reg.Pull + "/" + target, nil
	case r.domain == reg.Pull:
		return r.target(), image, nil
	}
	how := fmt.Sprintf("docker tag %s %s", image, r.repo+r.ref)
	return "", "", fmt.Errorf("%s is an image of registry %s, which the nodes pull from directly, not from the lab registry (%s); to run it from the lab registry, give it a docker.io name and load that: %s && swarmlab load %s",
		image, r.domain, reg.Pull, how, r.repo+r.ref)
}
