package lab

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/swarmlab/swarmlab/lab/images"
	"github.com/swarmlab/swarmlab/lab/registry"
	"github.com/swarmlab/swarmlab/lab/stack"
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

// PushImage copies a host image into the lab registry under each target
// ("team/app:v1"); nodes then pull it as "<registry>/team/app:v1". Where the
// lab has a registry per node (ssh), it goes to each.
func PushImage(ctx context.Context, l *Lab, local string, targets ...string) error {
	addrs := l.Cluster.Registry.Targets()
	errs := make([]error, len(addrs))
	var wg sync.WaitGroup
	for i, addr := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = registry.Push(ctx, l.Host, addr, local, targets...)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// BuildStackImages builds the images a stack file declares (x-swarmlab),
// pushes them into the lab registry, and returns the variables that name
// them for the stack file (SWARMLAB_IMAGE_<NAME> = the reference nodes pull,
// tagged by content hash). Each image is pushed as swarmlab/<name>:latest
// too, so a person can name it without the hash
// (docker service update --image registry:5000/swarmlab/customers-v2:latest).
func (l *Lab) BuildStackImages(ctx context.Context, stackPath string) (map[string]string, error) {
	specs, err := stack.Images(stackPath)
	if err != nil || len(specs) == 0 {
		return nil, err
	}
	root, err := images.ModuleRoot(filepath.Dir(stackPath))
	if err != nil {
		return nil, err
	}
	env := map[string]string{}
	for name, spec := range specs {
		var pkgs []string
		for _, p := range spec.Go {
			abs := filepath.Join(filepath.Dir(stackPath), p)
			rel, err := filepath.Rel(root, abs)
			if err != nil {
				return nil, err
			}
			pkgs = append(pkgs, "./"+filepath.ToSlash(rel))
		}
		repo := "swarmlab/" + name
		local, err := images.BuildGo(ctx, l.Host, images.GoImage{Repo: repo, ModuleDir: root, Packages: pkgs, LDFlags: spec.LDFlags})
		if err != nil {
			return nil, err
		}
		if err := PushImage(ctx, l, local, local, repo+":latest"); err != nil {
			return nil, err
		}
		env[stack.ImageEnv(name)] = l.Cluster.Registry.Pull + "/" + local
	}
	return env, nil
}

// BuildGoImage builds a Go image on the host and pushes it into the lab
// registry; it returns the reference nodes pull it by.
func (l *Lab) BuildGoImage(ctx context.Context, img images.GoImage) (string, error) {
	local, err := images.BuildGo(ctx, l.Host, img)
	if err != nil {
		return "", err
	}
	if err := PushImage(ctx, l, local, local); err != nil {
		return "", err
	}
	return l.Cluster.Registry.Pull + "/" + local, nil
}
