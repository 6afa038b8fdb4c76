package docker

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	tcnetwork "github.com/testcontainers/testcontainers-go/network"

	"github.com/swarmlab/swarmlab/lab/provider/common"
	"github.com/swarmlab/swarmlab/lab/wait"
)

// The lab's pull-through cache of docker.io.
//
// The lab registry is the nodes' first docker.io mirror: it serves the
// standard images (redis, nginx...) and what `swarmlab load` pushed, and
// takes pushes, so it cannot be a proxy (distribution refuses pushes in
// proxy mode). Beside it each lab runs a second registry, from the same
// image, in distribution's proxy mode (REGISTRY_PROXY_REMOTEURL): a
// pull-through cache of docker.io, on the lab network as "dockerio", which
// the nodes use as their second mirror. Its blobs are in a volume shared by
// every lab, like the lab registry's, so that an image is fetched from
// docker.io once, whichever lab asked first.
//
// That the nodes go on to the second mirror when the first lacks a name is
// dockerd's own endpoint order (moby, read for this):
// registry/service_v2.go lookupV2Endpoints lists every registry-mirrors
// entry, in order, before docker.io itself; distribution/pull.go Pull tries
// them in that order and moves to the next on a fallbackError; and
// distribution/pull_v2.go wraps an error in fallbackError when
// continueOnError(err, endpoint.Mirror) says so, which
// distribution/errors.go answers true for any registry error code
// (manifest unknown: the lab registry's 404) from a mirror, and for a mirror
// that cannot be reached. So a name the lab registry lacks is asked of the
// cache, and one the cache cannot get either is still tried at docker.io.

const (
	// DockerIOAlias is the name nodes reach the cache by.
	DockerIOAlias = "dockerio"
	// DockerIOCacheVolume holds the cache's blobs across labs.
	DockerIOCacheVolume = "swarmlab-dockerio-cache"
	// UpstreamEnv names the registry the cache caches: an http:// or
	// https:// URL; empty or "off": no cache. Unset: DefaultUpstream.
	UpstreamEnv = "SWARMLAB_DOCKERIO_UPSTREAM"
	// DefaultUpstream is docker.io's registry endpoint.
	DefaultUpstream = "https://registry-1.docker.io"
)

func dockerIOName(lab string) string { return "swarmlab-" + lab + "-dockerio" }

// dockerIOUpstream reads UpstreamEnv: the upstream's URL ("scheme://host"),
// or "" for no cache.
func dockerIOUpstream(lookup func(string) (string, bool)) (string, error) {
	v, set := lookup(UpstreamEnv)
	if !set {
		return DefaultUpstream, nil
	}
	v = strings.TrimSpace(v)
	if v == "" || v == "off" {
		return "", nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.User != nil {
		return "", fmt.Errorf("%s=%q: want a registry's URL (https://host, http://host:port), or off for no docker.io cache", UpstreamEnv, v)
	}
	return u.Scheme + "://" + u.Host, nil
}

func upstreamFromEnv() (string, error) { return dockerIOUpstream(os.LookupEnv) }

// The cache's command. distribution 2.8's proxy asks its upstream's /v2/
// once as it starts, and panics where that fails (registry/proxy:
// NewRegistryPullThroughCache calls configureAuth, whose getAuthURLs GETs
// remoteurl/v2/; handlers.NewApp panics on its error), so with docker.io
// out of reach (offline, or on a machine that reaches no registry at all,
// as this project's CI does) it would not run. So the container runs it
// again until it does, a little later each time (up to every 10 s), and
// the lab comes up meanwhile: a cache that refuses connections makes the
// nodes move on to their next endpoint at once (a mirror that cannot be
// reached is a fallbackError too), and the image check says it could not
// ask it. Once it runs, an upstream that goes away is no longer fatal: it
// serves what it holds.
const (
	cacheRetryMark = "swarmlab: the docker.io cache ended (does its upstream answer?)"
	cacheScript    = `n=1
until docker-registry serve /etc/docker/registry/config.yml; do
	echo "` + cacheRetryMark + `: starting it again in ${n}s" >&2
	sleep "$n"
	[ "$n" -ge 10 ] || n=$((n * 2))
done`
	// cacheStartWait bounds how long Create waits for the cache to
	// answer; past it (an upstream that does not answer, rather than one
	// that refuses) the lab comes up and the cache answers when it can.
	cacheStartWait = 10 * time.Second
)

// startDockerIOCache runs the lab's pull-through cache of upstream at ip,
// published on the engine host's 127.0.0.1 like the lab registry, so that
// this process (the image check) can ask it. A cache whose upstream does
// not answer is no error (see cacheScript): it is reported through logf.
func (p *Provider) startDockerIOCache(ctx context.Context, reach reachFunc, lab string, ip netip.Addr, base map[string]string, upstream string, logf func(string, ...any)) error {
	if err := p.ensureCacheVolume(ctx, DockerIOCacheVolume, "dockerio"); err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	name := dockerIOName(lab)
	_, err = testcontainers.Run(ctx, p.registryImage,
		testcontainers.WithName(name),
		testcontainers.WithLabels(withLabels(base, map[string]string{common.LabelComponent: common.ComponentDockerIO, common.LabelUpstream: upstream})),
		testcontainers.WithEnv(map[string]string{
			// distribution reads any config key from REGISTRY_<PATH>:
			// this one adds the proxy section to the image's config.yml.
			"REGISTRY_PROXY_REMOTEURL": upstream,
			// A failed start prints its reason, not every goroutine.
			"GOTRACEBACK": "none",
		}),
		testcontainers.WithCmd("sh", "-c", cacheScript),
		testcontainers.WithExposedPorts(registryPort),
		tcnetwork.WithNetworkName([]string{DockerIOAlias}, networkName(lab)),
		staticIP(networkName(lab), ip),
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			hc.Init = boolPtr(true) // sh is not PID 1: signals reach it, orphans are reaped
			hc.PortBindings = loopbackPort(registryPort, port)
			hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeVolume, Source: DockerIOCacheVolume, Target: "/var/lib/docker-registry"})
		}),
		testcontainers.WithLogger(tclog.NewNoopLogger()),
	)
	if err != nil {
		return fmt.Errorf("starting the docker.io cache of lab %s: %w", lab, err)
	}
	addr, err := reach(fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return err
	}
	url := "http://" + addr + "/v2/"
	var failed string
	_, err = wait.For(ctx, "the docker.io cache of lab "+lab+" to answer", cacheStartWait, pollHTTP, func(ctx context.Context) wait.Result {
		status, err := httpStatus(ctx, url)
		if status == http.StatusOK {
			return wait.Done("HTTP 200")
		}
		if failed = p.cacheFailure(ctx, name); failed != "" {
			return wait.Done(failed)
		}
		if err != nil {
			return wait.Continue("%v", err)
		}
		return wait.Continue("HTTP %d", status)
	})
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case failed != "":
		logf("docker.io cache: %s cannot be reached from the engine's host (%s); the cache starts again until it can", upstream, failed)
	case err != nil:
		logf("docker.io cache: %s does not answer yet from the engine's host; the cache serves once it does (%v)", upstream, err)
	}
	return nil
}

// httpStatus is the status of a GET of url, or why there is none.
func httpStatus(ctx context.Context, url string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// cacheFailure is the reason the cache's registry ended, as it printed it,
// if it did: "" while it starts or runs.
func (p *Provider) cacheFailure(ctx context.Context, name string) string {
	rc, err := p.host.ContainerLogs(ctx, name, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: "20"})
	if err != nil {
		return ""
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := stdcopy.StdCopy(&buf, &buf, rc); err != nil {
		return ""
	}
	return cacheFailureIn(buf.String())
}

// cacheFailureIn reads the cache's output: "" if its registry did not end,
// else the reason it gave last.
func cacheFailureIn(output string) string {
	if !strings.Contains(output, cacheRetryMark) {
		return ""
	}
	why := "it ended"
	for _, line := range strings.Split(output, "\n") {
		if r, ok := strings.CutPrefix(line, "panic: "); ok {
			why = strings.TrimSpace(r)
		}
	}
	return why
}
