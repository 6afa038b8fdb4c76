//go:build integration

//swarmlab:labs (these tests bring up labs: scripts/test runs them apart from other labs)

package lab_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/swarmlab/swarmlab/lab"
	"github.com/swarmlab/swarmlab/lab/internal/registry"
	"github.com/swarmlab/swarmlab/lab/labtest"
	"github.com/swarmlab/swarmlab/lab/provider"
	"github.com/swarmlab/swarmlab/lab/provider/common"
	labswarm "github.com/swarmlab/swarmlab/lab/swarm"
	"github.com/swarmlab/swarmlab/lab/topology"
	"github.com/swarmlab/swarmlab/lab/wait"
)

// upLab brings a shipped topology up under a test-unique name and removes it
// when the test ends, passes, fails or panics.
func upLab(t *testing.T, name, as string) *lab.Lab {
	t.Helper()
	var topo *topology.Topology
	if strings.Contains(name, "/") {
		var err error
		if topo, _, err = topology.LoadFile(name); err != nil {
			t.Fatal(err)
		}
	} else {
		topo = shipped(t, name)
	}
	l, err := labtest.UpFor(context.Background(), topo, lab.Options{Name: as, Out: labtest.Writer(t)})
	if err != nil {
		t.Fatalf("up %s: %v", name, err)
	}
	release := labtest.RemoveOnInterrupt(l)
	t.Cleanup(func() {
		defer release()
		if err := l.Down(context.Background()); err != nil {
			t.Errorf("down %s: %v", as, err)
		}
		assertNothingLeft(t, as)
	})
	t.Logf("%s up in %s (ingress %s, API host %s nodes %v)", as, l.BringUp().Total, l.Info().Ingress, l.Info().HostAPI, l.Info().NodeAPI)
	return l
}

// shipped loads a topology from topologies/ without its stacks: these tests
// are about the lab; the apps a topology deploys are tested with their own
// packages.
func shipped(tb testing.TB, name string) *topology.Topology {
	tb.Helper()
	topo, _, err := topology.LoadFile(filepath.Join("..", "topologies", name+".yaml"))
	if err != nil {
		tb.Fatal(err)
	}
	topo.Stacks = nil
	return topo
}

// assertNothingLeft checks that nothing of the lab called name is left
// (lab.Leftovers: what its provider still holds, and its state here).
func assertNothingLeft(t *testing.T, name string) {
	t.Helper()
	left, err := lab.Leftovers(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("lab %s left %d things: %s", name, len(left), strings.Join(left, ", "))
	}
}

// assertTopology checks roles, labels, availability, one leader, all Ready,
// and that the lab's containers publish on loopback only.
func assertTopology(t *testing.T, l *lab.Lab) {
	t.Helper()
	assertSwarm(t, l)
	assertLoopbackOnly(t, l)
}

// assertSwarm checks that the swarm is what the topology describes: roles,
// labels, availability, one leader, all Ready, and the ingress label.
func assertSwarm(t *testing.T, l *lab.Lab) {
	t.Helper()
	st, err := l.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Nodes) != len(l.Topology().Nodes) {
		t.Fatalf("swarm has %d nodes, topology %d", len(st.Nodes), len(l.Topology().Nodes))
	}
	leaders := 0
	for _, want := range l.Topology().Nodes {
		var got *struct{}
		for _, n := range st.Nodes {
			if n.Name != want.Name {
				continue
			}
			got = &struct{}{}
			if n.Role != want.Role {
				t.Errorf("%s: role %s, want %s", n.Name, n.Role, want.Role)
			}
			if n.State != "ready" {
				t.Errorf("%s: state %s, want ready", n.Name, n.State)
			}
			if n.Availability != want.Availability {
				t.Errorf("%s: availability %s, want %s", n.Name, n.Availability, want.Availability)
			}
			for k, v := range want.Labels {
				if n.Labels[k] != v {
					t.Errorf("%s: label %s=%q, want %q", n.Name, k, n.Labels[k], v)
				}
			}
			if n.Leader {
				leaders++
			}
		}
		if got == nil {
			t.Errorf("node %s is not in the swarm", want.Name)
		}
	}
	if leaders != 1 {
		t.Errorf("%d leaders, want 1", leaders)
	}
	if st.Labels[common.LabelIngress] != l.Info().Ingress || l.Info().Ingress == "" {
		t.Errorf("swarm ingress label %q, preflight said %q", st.Labels[common.LabelIngress], l.Info().Ingress)
	}
}

// assertLoopbackOnly checks that every container of the lab carries the lab
// and run labels and publishes ports on 127.0.0.1 only.
func assertLoopbackOnly(t *testing.T, l *lab.Lab) {
	t.Helper()
	ctx := context.Background()
	cs, err := l.Host().ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", common.LabelLab+"="+l.Name())})
	if err != nil {
		t.Fatal(err)
	}
	want, what := len(l.Cluster().Nodes())+1, "the registry"
	if l.Cluster().Registry().DockerIO.On() {
		want, what = want+1, "the registry and the docker.io cache"
	}
	if len(cs.Items) != want {
		t.Errorf("%d labelled containers, want %d nodes + %s", len(cs.Items), len(l.Cluster().Nodes()), what)
	}
	for _, c := range cs.Items {
		if c.Labels[common.LabelRun] != l.RunID() {
			t.Errorf("container %s: run label %q, want %q", c.Names[0], c.Labels[common.LabelRun], l.RunID())
		}
		for _, p := range c.Ports {
			if p.PublicPort != 0 && p.IP.String() != "127.0.0.1" {
				t.Errorf("container %s publishes %d on %s", c.Names[0], p.PublicPort, p.IP)
			}
		}
	}
}

func TestUpSwarm3(t *testing.T) {
	l := upLab(t, "swarm-3", "it-swarm3")
	assertTopology(t, l)

	t.Run("a second up with the same name fails and changes nothing", func(t *testing.T) {
		_, err := lab.Up(context.Background(), shipped(t, "swarm-3"), lab.Options{Name: l.Name()})
		if err == nil || !strings.Contains(err.Error(), "already running") {
			t.Fatalf("want an 'already running' error, got %v", err)
		}
		if err := l.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		assertTopology(t, l)
	})

	t.Run("services run from the lab registry and from mirrored docker.io names on every node", func(t *testing.T) {
		testRegistryServices(t, l)
	})

	t.Run("a stack asking for an image no node can get is refused before the swarm sees it", func(t *testing.T) {
		testRefusesMissingImages(t, l)
	})

	t.Run("a killed node comes back Ready after start", func(t *testing.T) {
		testKillStart(t, l, "w2")
	})

	t.Run("a partitioned node goes Down and is Ready again after heal", func(t *testing.T) {
		testPartitionHeal(t, l, "w1")
	})
}

func TestUpDeploysStacks(t *testing.T) {
	l := upLab(t, "testdata/web-3.yaml", "it-web")
	st, err := l.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	running := map[string]uint64{}
	for _, s := range st.Services {
		running[s.Name] = s.Running
	}
	if running["web_web"] != 2 || running["web_echo"] != 2 {
		t.Fatalf("want web_web and web_echo running 2 tasks each, got %+v", st.Services)
	}
	// Host-mode ports answer on the nodes that run a task (the workers);
	// echo is the image the lab built from Go source, tagged "test".
	for _, name := range []string{"w1", "w2"} {
		var urls []string
		for _, port := range []uint16{8080, 8081} {
			addr, err := l.Cluster().PublishedAddr(name, port)
			if err != nil {
				t.Fatal(err)
			}
			urls = append(urls, "http://"+addr+"/")
		}
		for _, url := range urls {
			body := httpOK(t, url)
			if strings.HasSuffix(url, ":8081/") && !strings.Contains(body, `"version":"test"`) {
				t.Errorf("%s answered %q, want the echo app built by the lab", url, body)
			}
		}
	}
}

// testRefusesMissingImages: a stack asking for redis:alpine,
// which the lab registry does not serve and (here: no registry reachable)
// no node can pull, is refused before anything reaches the swarm, naming
// the service, the image and what the lab serves instead. Before the check,
// its task cycled "No such image" forever.
func testRefusesMissingImages(t *testing.T, l *lab.Lab) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "stack.yml")
	if err := os.WriteFile(path, []byte("services:\n  cache: {image: \"redis:7\"}\n  queue: {image: \"redis:alpine\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := l.Stacks().Deploy(ctx, "imgs", path, lab.StackOptions{})
	if err == nil {
		t.Skip("NOT RUN: a node pulled redis:alpine itself (docker.io is reachable here), so nothing is missing to refuse")
	}
	for _, want := range []string{"service queue: redis:alpine is missing", "the lab serves redis:latest, redis:7", "nothing was deployed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("deploy error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "redis:7 is missing") {
		t.Errorf("redis:7, which the lab serves, reported missing: %v", err)
	}
	st, serr := l.Status(ctx)
	if serr != nil {
		t.Fatal(serr)
	}
	for _, s := range st.Services {
		if strings.HasPrefix(s.Name, "imgs_") {
			t.Errorf("service %s was created although the deploy was refused", s.Name)
		}
	}
}

// httpOK waits until url answers 200 and returns the body.
func httpOK(t *testing.T, url string) string {
	t.Helper()
	var body string
	_, err := wait.For(context.Background(), "HTTP 200 from "+url, 30*time.Second, 250*time.Millisecond,
		func(ctx context.Context) wait.Result {
			resp, err := http.Get(url)
			if err != nil {
				return wait.Continue("%v", err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 {
				return wait.Continue("HTTP %d", resp.StatusCode)
			}
			body = string(b)
			return wait.Done("HTTP 200")
		})
	if err != nil {
		t.Error(err)
	}
	return body
}

func TestUpVote6(t *testing.T) {
	l := upLab(t, "vote-6", "it-vote6")
	assertTopology(t, l)
}

func TestUpSwarmHA(t *testing.T) {
	l := upLab(t, "swarm-ha", "it-ha")
	assertTopology(t, l)
	st, err := l.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	reachable := 0
	for _, n := range st.Nodes {
		if n.Role == "manager" && n.Reachability == "reachable" {
			reachable++
		}
	}
	if reachable != 3 {
		t.Errorf("%d reachable managers, want 3", reachable)
	}
}

func TestTwoLabsSideBySide(t *testing.T) {
	a := upLab(t, "swarm-3", "it-side-a")
	b := upLab(t, "swarm-3", "it-side-b")
	assertTopology(t, a)
	assertTopology(t, b)
	if a.Cluster().Nodes()[0].Addr() == b.Cluster().Nodes()[0].Addr() {
		t.Errorf("both labs use address %s", a.Cluster().Nodes()[0].Addr())
	}
}

func TestFailedBringUpLeavesNothing(t *testing.T) {
	// The bring-up is cut short while nodes start; Up must remove what it made.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err := lab.Up(ctx, shipped(t, "swarm-3"), lab.Options{Name: "it-cancelled"})
	if err == nil {
		lab.Down(context.Background(), "it-cancelled")
		t.Skip("bring-up finished within 3 s; nothing was interrupted")
	}
	assertNothingLeft(t, "it-cancelled")
}

// testRegistryServices runs services on every node from an image only the
// lab registry holds and from a mirrored docker.io name, and proves from the
// registry's own access log that every node fetched both manifests from it.
// The old test only waited for the tasks to run: on a machine with internet
// access a node whose mirror missed would have pulled nginx from docker.io
// and passed.
func testRegistryServices(t *testing.T, l *lab.Lab) {
	ctx := context.Background()
	// An image that exists only in the lab registry: the host pushes its
	// own redis build there under a private name.
	only := "lab/only-here:v1"
	if err := l.Stacks().PushImage(ctx, stdRef(t, l, "redis"), only); err != nil {
		t.Fatal(err)
	}
	mgr, _, err := l.Manager(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ img, repo string }{
		{l.Cluster().Registry().Pull + "/" + only, "lab/only-here"},
		{"nginx", registry.Name("nginx")},
	} {
		img := c.img
		// The log before the pull: what follows is this pull's doing.
		before := registryLog(t, l)
		for _, n := range l.Cluster().Nodes() {
			if err := pulledFromLabRegistry(before, c.repo, n.Addr()); err == nil {
				t.Fatalf("registry served %s to node %s before its service existed: the log cannot tell this pull apart", c.repo, n.Name())
			}
		}
		name := strings.NewReplacer("/", "-", ":", "-", ".", "-").Replace(img)
		created, err := mgr.ServiceCreate(ctx, client.ServiceCreateOptions{Spec: swarm.ServiceSpec{
			Annotations:  swarm.Annotations{Name: name},
			Mode:         swarm.ServiceMode{Global: &swarm.GlobalService{}},
			TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: img}},
		}})
		if err != nil {
			t.Fatalf("creating service from %s: %v", img, err)
		}
		_, err = wait.For(ctx, fmt.Sprintf("service %s (%s) running on all %d nodes", name, img, len(l.Cluster().Nodes())), 2*time.Minute, time.Second,
			func(ctx context.Context) wait.Result {
				tasks, err := mgr.TaskList(ctx, client.TaskListOptions{Filters: make(client.Filters).Add("service", created.ID)})
				if err != nil {
					return wait.Continue("task list: %v", err)
				}
				running := map[string]bool{}
				var states []string
				for _, task := range tasks.Items {
					states = append(states, fmt.Sprintf("%s:%s %s", task.NodeID[:6], task.Status.State, task.Status.Err))
					if task.Status.State == swarm.TaskStateRunning {
						running[task.NodeID] = true
					}
				}
				if len(running) == len(l.Cluster().Nodes()) {
					return wait.Done("running everywhere")
				}
				return wait.Continue("%d/%d nodes running: %s", len(running), len(l.Cluster().Nodes()), strings.Join(states, ", "))
			})
		if err != nil {
			t.Error(err)
		}
		after := registryLogSince(ctx, t, l, before, "every node's pull of "+img, func(after []registry.Request) error {
			for _, n := range l.Cluster().Nodes() {
				if err := pulledFromLabRegistry(after, c.repo, n.Addr()); err != nil {
					return fmt.Errorf("node %s: %w", n.Name(), err)
				}
			}
			return nil
		})
		for _, n := range l.Cluster().Nodes() {
			if err := pulledFromLabRegistry(after, c.repo, n.Addr()); err != nil {
				t.Errorf("service %s: node %s (%s): %v", name, n.Name(), n.Addr(), err)
			} else {
				t.Logf("node %s pulled %s from the lab registry: %s", n.Name(), img, servedTo(after, c.repo, n.Addr()))
			}
		}
		mgr.ServiceRemove(ctx, created.ID, client.ServiceRemoveOptions{})
	}

	// The control: a docker.io name the lab registry does not hold. The
	// node's mirror answers 404, which the log records against the node's
	// address, and the check above rejects it: a pull that went past the
	// mirror cannot pass for one the lab registry served.
	n := l.Cluster().Nodes()[len(l.Cluster().Nodes())-1]
	const absent = "swarmlab-absent/not-pushed:v1"
	nc, err := l.Client(n.Name())
	if err != nil {
		t.Fatal(err)
	}
	before := registryLog(t, l)
	pctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if resp, err := nc.ImagePull(pctx, absent, client.ImagePullOptions{}); err == nil {
		err = resp.Wait(pctx)
		if err == nil {
			t.Errorf("node %s pulled %s, which nobody pushed", n.Name(), absent)
		}
	}
	repo := registry.Name("swarmlab-absent/not-pushed")
	missedIn := func(after []registry.Request) bool {
		for _, r := range after {
			if r.Remote == n.Addr() && r.ManifestGet(repo) && r.Status == http.StatusNotFound {
				return true
			}
		}
		return false
	}
	after := registryLogSince(ctx, t, l, before, "the 404 for node "+n.Name()+"'s pull of "+absent, func(after []registry.Request) error {
		if !missedIn(after) {
			return errors.New("no 404 for it yet")
		}
		return nil
	})
	missed := missedIn(after)
	if err := pulledFromLabRegistry(after, repo, n.Addr()); err == nil {
		t.Errorf("the check accepts a pull of %s, which the lab registry does not hold", absent)
	}
	if !missed {
		t.Errorf("the registry log records no 404 for node %s's pull of %s within 10 s; it recorded %v", n.Name(), absent, after)
	} else {
		t.Logf("control: node %s's pull of %s missed the lab registry: %s", n.Name(), absent, servedTo(after, repo, n.Addr()))
	}
}

// registryLog reads the access log of the lab's registry container through
// the host engine.
// registryLogSince is the registry's log after its first before requests,
// read again (for up to 10 s) until ok accepts it: the log is read through
// the engine, and its last lines can lag the answers (seen once under load:
// nothing new in it yet). It returns what it last read; the caller asserts.
func registryLogSince(ctx context.Context, t *testing.T, l *lab.Lab, before []registry.Request, what string, ok func([]registry.Request) error) []registry.Request {
	t.Helper()
	var after []registry.Request
	wait.For(ctx, "the registry's log to record "+what, 10*time.Second, 200*time.Millisecond, func(context.Context) wait.Result {
		after = registryLog(t, l)[len(before):]
		if err := ok(after); err != nil {
			return wait.Continue("%v", err)
		}
		return wait.Done(fmt.Sprintf("%d requests", len(after)))
	})
	return after
}

func registryLog(t *testing.T, l *lab.Lab) []registry.Request {
	t.Helper()
	ctx := context.Background()
	f := make(client.Filters).Add("label", common.LabelLab+"="+l.Name()).Add("label", common.LabelComponent+"="+common.ComponentRegistry)
	cs, err := l.Host().ContainerList(ctx, client.ContainerListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs.Items) != 1 {
		t.Fatalf("lab %s has %d running registry containers, want 1", l.Name(), len(cs.Items))
	}
	reqs, err := registry.Requests(ctx, l.Host(), cs.Items[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	return reqs
}

// servedTo lists the manifest GETs of repo the registry answered for addr.
func servedTo(reqs []registry.Request, repo, addr string) string {
	var out []string
	for _, r := range reqs {
		if r.Remote == addr && r.ManifestGet(repo) {
			out = append(out, fmt.Sprintf("GET %s %d", r.Path, r.Status))
		}
	}
	return strings.Join(out, ", ")
}

// pulledFromLabRegistry says whether the registry served a manifest of repo
// to the node at addr (HTTP 200 on a GET), and if not, what it did record
// for that node and repo.
func pulledFromLabRegistry(reqs []registry.Request, repo, addr string) error {
	var seen []string
	for _, r := range reqs {
		if r.Remote != addr || !strings.HasPrefix(r.Path, "/v2/"+repo+"/") {
			continue
		}
		if r.ManifestGet(repo) && r.Status == http.StatusOK {
			return nil
		}
		seen = append(seen, r.String())
	}
	if len(seen) == 0 {
		seen = append(seen, "no request for "+repo+" from "+addr)
	}
	return fmt.Errorf("the lab registry served no manifest of %s to %s (GET 200); its log has: %s", repo, addr, strings.Join(seen, "; "))
}

func stdRef(t *testing.T, l *lab.Lab, name string) string {
	t.Helper()
	ref, err := l.Stacks().LocalImage(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// nodeState waits until the swarm sees node in state.
func nodeState(t *testing.T, l *lab.Lab, node string, want swarm.NodeState) time.Duration {
	t.Helper()
	start := time.Now()
	ctx := context.Background()
	_, err := wait.For(ctx, fmt.Sprintf("node %s to be %s", node, want), 60*time.Second, 200*time.Millisecond,
		func(ctx context.Context) wait.Result {
			mgr, _, err := l.Manager(ctx)
			if err != nil {
				return wait.Continue("%v", err)
			}
			n, err := labswarm.NodeByHostname(ctx, mgr, node)
			if err != nil {
				return wait.Continue("%v", err)
			}
			if n.Status.State == want {
				return wait.Done(string(n.Status.State))
			}
			return wait.Continue("%s is %s", node, n.Status.State)
		})
	if err != nil {
		t.Fatal(err)
	}
	return time.Since(start)
}

func testKillStart(t *testing.T, l *lab.Lab, node string) {
	ctx := context.Background()
	if err := l.Do(ctx, node, provider.Kill); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s Down %s after kill", node, nodeState(t, l, node, swarm.NodeStateDown))
	if err := l.Do(ctx, node, provider.Start); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s Ready %s after start", node, nodeState(t, l, node, swarm.NodeStateReady))
}

func testPartitionHeal(t *testing.T, l *lab.Lab, node string) {
	ctx := context.Background()
	if err := l.Do(ctx, node, provider.Partition); err != nil {
		t.Fatal(err)
	}
	n, _ := l.Node(node)
	if !n.Partitioned() {
		t.Errorf("provider does not report %s as partitioned", node)
	}
	t.Logf("%s Down %s after partition", node, nodeState(t, l, node, swarm.NodeStateDown))
	if err := l.Do(ctx, node, provider.Heal); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s Ready %s after heal", node, nodeState(t, l, node, swarm.NodeStateReady))
}

func TestMain(m *testing.M) {
	// Labs left by an earlier, killed run would make names collide.
	ctx := context.Background()
	for _, n := range []string{"it-swarm3", "it-vote6", "it-ha", "it-side-a", "it-side-b", "it-cancelled", "it-web", dockerIOLab} {
		lab.Down(ctx, n)
	}
	os.Exit(m.Run())
}
