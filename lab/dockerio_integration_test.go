//go:build integration

package lab_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/swarmlab/swarmlab/lab"
	"github.com/swarmlab/swarmlab/lab/images"
	"github.com/swarmlab/swarmlab/lab/internal/registry"
	"github.com/swarmlab/swarmlab/lab/provider/common"
	"github.com/swarmlab/swarmlab/lab/provider/docker"
	"github.com/swarmlab/swarmlab/lab/wait"
)

const dockerIOLab = "it-dockerio"

// TestDockerIOCacheServesAPlainNameOnce is the lab's pull-through cache of
// docker.io, end to end, with a plain registry standing in for docker.io
// (SWARMLAB_DOCKERIO_UPSTREAM points at it): a stack that says `image:
// <name>:v1`, a docker.io name the lab registry does not hold and only the
// stand-in serves, deploys, and its global service runs on both nodes; the
// stand-in is asked only by the cache, never by a node, and serves each of
// the image's blobs for one fetch of the cache's, although both nodes
// pulled it. Then, with the stand-in unreachable (the upstream points
// nowhere), a stack of another name the stand-in holds is refused before
// anything is deployed, with its missing-image line.
func TestDockerIOCacheServesAPlainNameOnce(t *testing.T) {
	ctx := context.Background()
	stamp := time.Now().UnixNano()
	// The stand-in is reached by its container name on the lab network,
	// which it joins once the lab is up.
	upstream := fmt.Sprintf("swarmlab-%s-upstream-%d", dockerIOLab, stamp)
	t.Setenv(docker.UpstreamEnv, "http://"+upstream+":5000")

	topo := filepath.Join(t.TempDir(), dockerIOLab+".yaml")
	os.WriteFile(topo, []byte(`apiVersion: swarmlab.dev/v1alpha1
kind: Topology
name: `+dockerIOLab+`
provider: {type: docker}
swarm: {dispatcherHeartbeat: 1s}
nodes:
  - {name: m1, role: manager}
  - {name: w1, role: worker}
`), 0o644)
	l := upLab(t, topo, dockerIOLab)
	host := l.Host()
	reg := l.Cluster().Registry()
	if !reg.DockerIO.On() || reg.DockerIO.Upstream != "http://"+upstream+":5000" {
		t.Fatalf("the lab's docker.io cache is %+v, want one of http://%s:5000", reg.DockerIO, upstream)
	}
	labNet := "swarmlab-" + dockerIOLab
	cacheAddr := componentAddr(t, l, common.ComponentDockerIO, labNet)

	// The stand-in: a plain registry (the lab's registry image), with the
	// lab's labels so that down removes it (before the network it joins)
	// if the test does not.
	regImage, err := images.Resolve(ctx, host, images.Registry())
	if err != nil {
		t.Fatal(err)
	}
	port := freeLoopbackPort(t)
	p := network.MustParsePort("5000/tcp")
	created, err := host.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: upstream,
		Config: &container.Config{
			Image: regImage, ExposedPorts: network.PortSet{p: {}},
			Labels: map[string]string{common.LabelLab: dockerIOLab, common.LabelRun: l.RunID(), common.LabelComponent: "test-upstream"},
		},
		HostConfig: &container.HostConfig{
			PortBindings: network.PortMap{p: {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: strconv.Itoa(port)}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		host.ContainerRemove(context.Background(), created.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	})
	if _, err := host.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	push := fmt.Sprintf("127.0.0.1:%d", port)
	if _, err := wait.For(ctx, "the stand-in for docker.io to answer", time.Minute, 100*time.Millisecond, wait.HTTPOK("http://"+push+"/v2/")); err != nil {
		t.Fatal(err)
	}
	if _, err := host.NetworkConnect(ctx, labNet, client.NetworkConnectOptions{Container: created.ID}); err != nil {
		t.Fatal(err)
	}
	// The cache could not reach its upstream as the lab came up (it was
	// not on the lab network yet): it starts again until it can.
	joined := time.Now()
	if _, err := wait.For(ctx, "the docker.io cache to start once its upstream answers", time.Minute, 200*time.Millisecond, wait.HTTPOK("http://"+reg.DockerIO.Query+"/v2/")); err != nil {
		t.Fatal(err)
	}
	t.Logf("the docker.io cache answered %v after its upstream joined the lab network", time.Since(joined).Round(100*time.Millisecond))

	// Two names of a small lab image, pushed to the stand-in only, as
	// docker.io's library/ names. Names of this run's own: the cache's
	// blobs outlive labs, and it serves a repository it fetched before
	// without asking upstream again.
	local, err := images.Resolve(ctx, host, mustImage(t, "redis"))
	if err != nil {
		t.Fatal(err)
	}
	cached := fmt.Sprintf("swarmlab-it-cached-%d", stamp)
	uncached := fmt.Sprintf("swarmlab-it-uncached-%d", stamp)
	if err := registry.Push(ctx, host, push, local, "library/"+cached+":v1", "library/"+uncached+":v1"); err != nil {
		t.Fatal(err)
	}
	pushed, err := registry.Requests(ctx, host, created.ID)
	if err != nil {
		t.Fatal(err)
	}

	stackFile := func(svc, image string) string {
		f := filepath.Join(t.TempDir(), svc+".yml")
		os.WriteFile(f, []byte("services:\n  "+svc+":\n    image: "+image+"\n    deploy:\n      mode: global\n"), 0o644)
		return f
	}
	start := time.Now()
	st, err := l.Stacks().Deploy(ctx, "cached", stackFile("app", cached+":v1"), lab.StackOptions{})
	if err != nil {
		t.Fatalf("deploy of %s:v1, which the stand-in for docker.io serves: %v", cached, err)
	}
	t.Logf("deployed %s:v1 through the docker.io cache in %v; warnings: %q", cached, time.Since(start).Round(time.Millisecond), st.Warnings)
	through := false
	for _, w := range st.Warnings {
		through = through || strings.Contains(w, cached+":v1 is not in the lab registry; it came through the lab's docker.io cache")
	}
	if !through {
		t.Errorf("warnings %q: none says %s:v1 came through the docker.io cache", st.Warnings, cached)
	}
	mgr, _, err := l.Manager(ctx)
	if err != nil {
		t.Fatal(err)
	}
	running := nodesRunningTasks(t, ctx, mgr)
	if len(running) != 2 {
		t.Errorf("%s:v1 runs on %d nodes, want both", cached, len(running))
	}

	// What the stand-in served since the push: to the cache only, and
	// each blob for one fetch. distribution 2.8's proxy fetches a blob it
	// lacks twice for its first client, once to store and once to stream
	// (registry/proxy/proxyblobstore.go ServeBlob), so one fetch is at
	// most two GETs; two nodes each fetching from upstream would be more.
	all, err := registry.Requests(ctx, host, created.ID)
	if err != nil {
		t.Fatal(err)
	}
	after := all[len(pushed):]
	nodes := map[string]string{}
	for _, n := range l.Cluster().Nodes() {
		nodes[n.Addr()] = n.Name()
	}
	blobs := map[string]int{}
	for _, r := range after {
		if n, ok := nodes[r.Remote]; ok {
			t.Errorf("node %s asked the stand-in for docker.io itself: %s", n, r)
		} else if r.Remote != cacheAddr {
			t.Errorf("%s asked the stand-in, which only the cache (%s) should: %s", r.Remote, cacheAddr, r)
		}
		if rest, ok := strings.CutPrefix(r.Path, "/v2/library/"+cached+"/blobs/"); ok && r.Method == "GET" && r.Status == 200 {
			blobs[rest]++
		}
	}
	if len(blobs) < 2 { // a config and at least one layer
		t.Errorf("the stand-in served %d blobs of %s (%v); want the image's config and layers", len(blobs), cached, blobs)
	}
	for b, n := range blobs {
		if n > 2 {
			t.Errorf("the stand-in served blob %s of %s %d times: the cache fetched it more than once", b, cached, n)
		}
	}
	t.Logf("the stand-in served %s's blobs %v (GETs per blob)", cached, blobs)

	// Both nodes pulled the blobs from the cache.
	cacheLog, err := registry.Requests(ctx, host, componentID(t, l, common.ComponentDockerIO))
	if err != nil {
		t.Fatal(err)
	}
	for addr, n := range nodes {
		got := 0
		for _, r := range cacheLog {
			if r.Remote == addr && r.Method == "GET" && r.Status == 200 && strings.HasPrefix(r.Path, "/v2/library/"+cached+"/blobs/") {
				got++
			}
		}
		if got == 0 {
			t.Errorf("node %s (%s) got no blob of %s from the docker.io cache", n, addr, cached)
		}
	}

	// The upstream pointing nowhere: the stand-in leaves the lab network,
	// and its name resolves no more. A name it holds, never asked before,
	// is refused with its missing-image line, and nothing is deployed.
	if _, err := host.NetworkDisconnect(ctx, labNet, client.NetworkDisconnectOptions{Container: created.ID, Force: true}); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	_, err = l.Stacks().Deploy(ctx, "uncached", stackFile("other", uncached+":v1"), lab.StackOptions{})
	t.Logf("deploy with the upstream unreachable answered in %v: %v", time.Since(start).Round(time.Millisecond), err)
	if err == nil || !strings.Contains(err.Error(), "service other: "+uncached+":v1 is missing;") || !strings.Contains(err.Error(), "nothing was deployed") {
		t.Errorf("deploy of %s:v1 with the upstream unreachable: %v; want its missing-image line", uncached, err)
	}
	svcs, err := mgr.ServiceList(ctx, client.ServiceListOptions{Filters: make(client.Filters).Add("label", "com.docker.stack.namespace=uncached")})
	if err != nil || len(svcs.Items) != 0 {
		t.Errorf("the refused stack left %d services (%v)", len(svcs.Items), err)
	}
}

// componentID is the ID of the lab's one container of that component.
func componentID(t *testing.T, l *lab.Lab, component string) string {
	t.Helper()
	f := make(client.Filters).Add("label", common.LabelLab+"="+l.Name()).Add("label", common.LabelComponent+"="+component)
	cs, err := l.Host().ContainerList(context.Background(), client.ContainerListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs.Items) != 1 {
		t.Fatalf("lab %s has %d running %s containers, want 1", l.Name(), len(cs.Items), component)
	}
	return cs.Items[0].ID
}

// componentAddr is the address on network net of the lab's one container
// of that component.
func componentAddr(t *testing.T, l *lab.Lab, component, net string) string {
	t.Helper()
	ins, err := l.Host().ContainerInspect(context.Background(), componentID(t, l, component), client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ep := ins.Container.NetworkSettings.Networks[net]
	if ep == nil {
		t.Fatalf("the %s container of lab %s is not on network %s", component, l.Name(), net)
	}
	return ep.IPAddress.String()
}

func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
