package lab

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	composetypes "github.com/docker/cli/cli/compose/types"
	"github.com/moby/moby/client"

	"github.com/swarmlab/swarmlab/lab/images"
	"github.com/swarmlab/swarmlab/lab/internal/registry"
	"github.com/swarmlab/swarmlab/lab/provider"
	"github.com/swarmlab/swarmlab/lab/stack"
)

// imageRef is an image reference as a registry serves it.
type imageRef struct {
	domain string // the registry host; dockerHub for a name without one
	repo   string // "library/redis", "swarmlab/echo"
	ref    string // ":7" or "@sha256:..."
}

const dockerHub = "docker.io"

// parseImageRef splits an image reference the way the engine reads it:
// a first path component with a dot or a colon, or "localhost", is a
// registry host; otherwise the name is docker.io's, where a name of one
// component is under library/ ("redis:7" is library/redis, tag 7). No tag
// is "latest".
func parseImageRef(s string) imageRef {
	r := imageRef{domain: dockerHub}
	rest := s
	if first, after, ok := strings.Cut(s, "/"); ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		r.domain, rest = first, after
	}
	if repo, digest, ok := strings.Cut(rest, "@"); ok {
		// A digest wins over a tag written beside it (redis:7@sha256:...).
		repo, _ = registry.SplitTag(repo)
		r.repo, r.ref = repo, "@"+digest
	} else {
		repo, tag := registry.SplitTag(rest)
		r.repo, r.ref = repo, ":"+tag
	}
	switch r.domain {
	case "index.docker.io", "registry-1.docker.io":
		r.domain = dockerHub
	}
	if r.domain == dockerHub {
		r.repo = registry.Name(r.repo) // as pushStandardImages names them
	}
	return r
}

// target is the name the registry serves it under: "library/redis:7".
func (r imageRef) target() string { return r.repo + r.ref }

// checkStackImages makes sure the nodes can get every image the services
// of stack name (cfg) ask for, before anything is deployed. An image is
// there when it is one of the stack's own (own: the references nodes pull
// them by, to their names), or when the lab registry serves it: asked over
// its HTTP API at the host-side push addresses, under the registry path of
// a docker.io name (where the registry is the nodes' mirror of docker.io;
// where it is not, nodes pull those names themselves and they are not
// checked) or of a name in the lab registry (registry:5000/team/app). A
// docker.io name the registry lacks is asked of the lab's pull-through
// cache of docker.io, the nodes' next mirror (askDockerIOCache), or, where
// the lab has none, tried by a node (probeDockerIO). An image of another
// registry, and a registry that cannot be asked from here, give a
// warning. The error has one line per missing image: the
// services asking for it, what the lab serves instead, and how to load it
// (Stacks.Load).
func (l *Lab) checkStackImages(ctx context.Context, name string, cfg *composetypes.Config, own map[string]string) (warnings []string, err error) {
	reg := l.cluster.Registry()
	byImage := map[string][]string{}
	for _, svc := range cfg.Services {
		if svc.Image != "" {
			byImage[svc.Image] = append(byImage[svc.Image], svc.Name)
		}
	}
	var checks []*check
	for _, img := range slices.Sorted(maps.Keys(byImage)) {
		svcs := byImage[img]
		sort.Strings(svcs)
		if _, ok := own[img]; ok {
			continue
		}
		r := parseImageRef(img)
		switch {
		case r.domain == dockerHub && !reg.Mirror:
			continue // the nodes pull docker.io names themselves
		case r.domain == dockerHub, r.domain == reg.Pull:
		default:
			warnings = append(warnings, fmt.Sprintf("stack %s: %s %s: image %s is from registry %s, which the lab does not check: the nodes must be able to pull it from there",
				name, plural(len(svcs), "service", "services"), strings.Join(svcs, ", "), img, r.domain))
			continue
		}
		checks = append(checks, &check{image: img, ref: r, services: svcs})
	}
	if len(checks) == 0 {
		return warnings, nil
	}
	if len(reg.Push) == 0 {
		return append(warnings, fmt.Sprintf("stack %s: the lab has no registry address to check its images at", name)), nil
	}
	var mu sync.Mutex
	_ = eachAtOnce(ctx, len(checks)*len(reg.Push), 0, func(i int) error {
		c, addr := checks[i/len(reg.Push)], reg.QueryAddrs()[i%len(reg.Push)]
		ok, err := registry.Serves(ctx, addr, c.ref.repo, c.ref.ref[1:])
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err != nil:
			c.errs = append(c.errs, err.Error())
		case !ok:
			c.missing = true
		}
		return nil
	})
	if err := ctx.Err(); err != nil {
		return warnings, err
	}
	// A docker.io name the lab registry lacks: the nodes ask their next
	// docker.io mirror, the lab's pull-through cache where it has one, then
	// docker.io itself.
	var fromDockerIO []*check
	for _, c := range checks {
		if c.missing && c.ref.domain == dockerHub {
			fromDockerIO = append(fromDockerIO, c)
		}
	}
	if len(fromDockerIO) > 0 {
		var more []string
		if reg.DockerIO.On() {
			more = l.askDockerIOCache(ctx, name, reg.DockerIO, fromDockerIO)
		} else {
			more = l.probeDockerIO(ctx, name, fromDockerIO)
		}
		warnings = append(warnings, more...)
		if err := ctx.Err(); err != nil {
			return warnings, err
		}
	}
	var lines []string
	for _, c := range checks {
		if c.missing {
			lines = append(lines, l.missingImageLine(c.image, c.ref, c.services, own))
		} else if len(c.errs) > 0 {
			sort.Strings(c.errs)
			warnings = append(warnings, fmt.Sprintf("stack %s: could not ask the lab registry whether it serves %s: %s", name, c.image, strings.Join(c.errs, "; ")))
		}
	}
	if len(lines) == 0 {
		return warnings, nil
	}
	return warnings, fmt.Errorf("stack %s asks for %s that the lab registry does not serve and no node can pull; nothing was deployed:\n  %s",
		name, plural(len(lines), "an image", fmt.Sprintf("%d images", len(lines))), strings.Join(lines, "\n  "))
}

// check is what the image check found of one image.
type check struct {
	image    string
	ref      imageRef
	services []string
	missing  bool
	errs     []string // why the registry could not be asked
}

// Bounds of the image check's looks past the lab registry.
const (
	// pullProbeTimeout bounds a node's try at pulling a docker.io image
	// the lab registry lacks, where the lab has no docker.io cache.
	pullProbeTimeout = 20 * time.Second
	// dockerIOAskTimeout bounds the docker.io cache's answer on a
	// manifest: it asks its upstream first.
	dockerIOAskTimeout = 20 * time.Second
	// dockerIOWarmTimeout bounds the pull that fills the cache with an
	// image before the deploy; past it the deploy goes on, and the nodes
	// pull the rest as their tasks start.
	dockerIOWarmTimeout = 2 * time.Minute
)

// askDockerIOCache asks the lab's pull-through cache of docker.io for each
// image the lab registry lacks: a manifest HEAD through it makes it fetch
// the manifest from its upstream. An image it serves is not missing; one
// node then pulls it (through the cache, its second mirror), so that the
// cache fetches the image's blobs from upstream once, before every node
// asks for them at the same moment when the tasks start: distribution
// 2.8's proxy does not make a request for a blob it is still fetching wait
// for that fetch (registry/proxy/proxyblobstore.go ServeBlob: an inflight
// blob is copied from upstream again). A node that cannot pull it (not
// merely slow) makes it missing after all. It returns the warnings.
func (l *Lab) askDockerIOCache(ctx context.Context, name string, cache provider.DockerIOCache, checks []*check) []string {
	var mu sync.Mutex
	var warnings []string
	warn := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		warnings = append(warnings, fmt.Sprintf(format, args...))
	}
	_ = eachAtOnce(ctx, len(checks), 0, func(i int) error {
		c := checks[i]
		ok, err := registry.ServesWithin(ctx, dockerIOAskTimeout, cache.Query, c.ref.repo, c.ref.ref[1:])
		if err != nil {
			warn("stack %s: could not ask the lab's docker.io cache (of %s) whether it serves %s (it runs once its upstream answers from the engine's host): %v", name, cache.Upstream, c.image, err)
			return nil
		}
		if !ok {
			return nil
		}
		node, cli, err := l.pullProbeNode(ctx)
		if err != nil {
			c.missing = false
			warn("stack %s: %s is not in the lab registry; it comes through the lab's docker.io cache (of %s)", name, c.image, cache.Upstream)
			return nil
		}
		pctx, cancel := context.WithTimeout(ctx, dockerIOWarmTimeout)
		defer cancel()
		err = images.Pull(pctx, cli, c.image)
		switch {
		case err == nil:
			c.missing = false
			warn("stack %s: %s is not in the lab registry; it came through the lab's docker.io cache (of %s), which node %s pulled it from", name, c.image, cache.Upstream, node)
		case ctx.Err() == nil && pctx.Err() != nil:
			c.missing = false
			warn("stack %s: %s is not in the lab registry; it comes through the lab's docker.io cache (of %s); node %s was still pulling it after %v, the nodes will pull it as their tasks start",
				name, c.image, cache.Upstream, node, dockerIOWarmTimeout)
		default:
			warn("stack %s: the lab's docker.io cache (of %s) has a manifest of %s, but node %s could not pull it: %v", name, cache.Upstream, c.image, node, err)
		}
		return nil
	})
	sort.Strings(warnings)
	return warnings
}

// probeDockerIO has a node try pulling each image, where the lab has no
// docker.io cache: dockerd falls back from its mirror, the lab registry,
// to docker.io itself, so where a node can reach docker.io (a laptop, a CI
// runner) redis:alpine is pulled from there and deploys. So a docker.io
// name the registry lacks is missing only if a node cannot pull it either
// (where no registry is reachable, it cannot). It returns the warnings.
func (l *Lab) probeDockerIO(ctx context.Context, name string, checks []*check) []string {
	node, cli, err := l.pullProbeNode(ctx)
	if err != nil {
		return nil
	}
	var mu sync.Mutex
	var warnings []string
	_ = eachAtOnce(ctx, len(checks), 0, func(i int) error {
		pctx, cancel := context.WithTimeout(ctx, pullProbeTimeout)
		defer cancel()
		if images.Pull(pctx, cli, checks[i].image) == nil {
			mu.Lock()
			checks[i].missing = false
			warnings = append(warnings, fmt.Sprintf("stack %s: %s is not in the lab registry; node %s pulled it from docker.io itself, as every node will", name, checks[i].image, node))
			mu.Unlock()
		}
		return nil
	})
	sort.Strings(warnings)
	return warnings
}

// pullProbeNode is the first running node and a client for its engine,
// where a docker.io name the registry lacks is tried.
func (l *Lab) pullProbeNode(ctx context.Context) (string, client.APIClient, error) {
	for _, n := range l.cluster.Nodes() {
		if n.State().Running() {
			cli, err := n.Engine(ctx)
			if err == nil {
				return n.Name(), cli, nil
			}
		}
	}
	return "", nil, fmt.Errorf("no running node of lab %s to try a pull on", l.name)
}

// missingImageLine is the line of an image the lab registry lacks: who
// asks for it, what the lab serves instead, and how to load it there.
func (l *Lab) missingImageLine(image string, r imageRef, services []string, own map[string]string) string {
	reg := l.cluster.Registry()
	// The standard images are in the registry where it is the nodes'
	// docker.io mirror (pushStandardImages); those of the same repository
	// first, or all of them.
	var same, all []string
	if reg.Mirror {
		for _, std := range images.Standard() {
			for _, pub := range std.Public {
				all = append(all, pub)
				if parseImageRef(pub).repo == r.repo {
					same = append(same, pub)
				}
			}
		}
	}
	instead := same
	if len(instead) == 0 {
		instead = all
		var mine []string
		for _, n := range own {
			mine = append(mine, "${"+stack.ImageEnv(n)+"} ("+n+")")
		}
		sort.Strings(mine)
		instead = append(instead, mine...)
	}
	serves := "nothing else"
	if len(instead) > 0 {
		serves = strings.Join(instead, ", ")
	}
	return fmt.Sprintf("%s %s: %s is missing; the lab serves %s; or load it from this machine's engine: swarmlab load %s --name %s",
		plural(len(services), "service", "services"), strings.Join(services, ", "), image, serves, image, l.name)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
