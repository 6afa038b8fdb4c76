package lab

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"sort"

	"github.com/swarmlab/swarmlab/lab/images"
	"github.com/swarmlab/swarmlab/lab/internal/registry"
	"github.com/swarmlab/swarmlab/lab/stack"
)

// LocalImage returns the host's reference for one of the lab's images
// ("redis", "node", ...).
func (s Stacks) LocalImage(ctx context.Context, name string) (string, error) {
	l := s.l
	img, ok := images.Get(name)
	if !ok {
		return "", fmt.Errorf("no lab image named %q", name)
	}
	return images.Resolve(ctx, l.host, img)
}

// PushImage copies a host image into the lab registry under each target
// ("team/app:v1"); nodes then pull it as "<registry>/team/app:v1". Where the
// lab has a registry per node (ssh), it goes to each. A target the registry
// already holds with the same image is not pushed again.
func (s Stacks) PushImage(ctx context.Context, local string, targets ...string) error {
	l := s.l
	reg := l.cluster.Registry()
	addrs, query := reg.Push, reg.QueryAddrs()
	if len(addrs) == 0 {
		return fmt.Errorf("lab %s has no registry to push %s to (is its registry running?)", l.name, local)
	}
	return eachAtOnce(ctx, len(addrs), 0, func(i int) error {
		_, err := registry.PushIfMissing(ctx, l.host, addrs[i], query[i], local, targets...)
		return err
	})
}

// stackImage is one image a stack file declares, once built on the host.
type stackImage struct {
	name  string // "customers"
	spec  images.GoImage
	local string // "swarmlab/customers:<hash>", once built
}

// stackImageSpecs reads the images a stack file declares (x-swarmlab), in
// name order, as Go images to build.
func stackImageSpecs(stackPath string) ([]stackImage, error) {
	specs, err := stack.Images(stackPath)
	if err != nil || len(specs) == 0 {
		return nil, err
	}
	root, err := images.ModuleRoot(filepath.Dir(stackPath))
	if err != nil {
		return nil, err
	}
	var out []stackImage
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
		out = append(out, stackImage{name: name, spec: images.GoImage{Repo: "swarmlab/" + name, ModuleDir: root, Packages: pkgs, LDFlags: spec.LDFlags}})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// buildImages builds imgs on the host, at most limit at once (0: as many
// as there are CPUs: go build is CPU-bound). Each build is timed as a part
// of the step in ctx. It needs neither the nodes nor the registry.
func (l *Lab) buildImages(ctx context.Context, imgs []*stackImage, limit int) error {
	if limit <= 0 {
		limit = runtime.NumCPU()
	}
	return eachAtOnce(ctx, len(imgs), limit, func(i int) error {
		img := imgs[i]
		return subStep(ctx, "build "+img.name, func() error {
			local, err := images.BuildGo(ctx, l.host, img.spec)
			img.local = local
			return err
		})
	})
}

// pushImages puts built stack images into the lab registry, all at once,
// each under its hashed tag and swarmlab/<name>:latest.
func (l *Lab) pushImages(ctx context.Context, imgs []*stackImage) error {
	return eachAtOnce(ctx, len(imgs), 0, func(i int) error {
		img := imgs[i]
		return subStep(ctx, "push "+img.name, func() error {
			return l.Stacks().PushImage(ctx, img.local, img.local, img.spec.Repo+":latest")
		})
	})
}

// imageEnv returns the variables naming built images for a stack file.
func (l *Lab) imageEnv(imgs []*stackImage) map[string]string {
	env := map[string]string{}
	for _, img := range imgs {
		env[stack.ImageEnv(img.name)] = l.cluster.Registry().Pull + "/" + img.local
	}
	return env
}

// BuildGoImage builds a Go image on the host and pushes it into the lab
// registry; it returns the reference nodes pull it by.
func (s Stacks) BuildGoImage(ctx context.Context, img images.GoImage) (string, error) {
	l := s.l
	local, err := images.BuildGo(ctx, l.host, img)
	if err != nil {
		return "", err
	}
	if err := s.PushImage(ctx, local, local); err != nil {
		return "", err
	}
	return l.cluster.Registry().Pull + "/" + local, nil
}
