package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/swarmlab/swarmlab/lab"
	"github.com/swarmlab/swarmlab/lab/provider"
	"github.com/swarmlab/swarmlab/lab/provider/common"
	"github.com/swarmlab/swarmlab/lab/provider/fake"
)

// These tests run the CLI's verbs on provider/fake, with no Docker: a lab
// is brought up on fake nodes and kept (the bring-up fails at preflight, as
// in TestUpOnTheFakeProvider), then its nodes are given a fake swarm
// manager's engine and its registry a fake registry, into which this
// machine's fake engine pushes.

type fakeCLI struct {
	p    *fake.Provider
	host *fake.Engine
	mgr  *fake.Manager
	reg  *fake.Registry
	c    *fake.Cluster
}

const cliTopology = `apiVersion: swarmlab.dev/v1alpha1
kind: Topology
name: cli
nodes:
  - {name: m1, role: manager}
  - {name: w1, role: worker}
  - {name: w2, role: worker}
`

func newFakeCLI(t *testing.T) *fakeCLI {
	t.Helper()
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	t.Setenv(LabEnv, "")
	f := &fakeCLI{p: fake.New(), host: fake.NewEngine(), reg: fake.NewRegistry()}
	t.Cleanup(f.host.Close)
	t.Cleanup(f.reg.Close)
	t.Setenv(lab.HostEnv, f.host.Addr())
	was := labOptions
	t.Cleanup(func() { labOptions = was })
	labOptions = func(o lab.Options) lab.Options {
		c, err := f.host.Client()
		if err != nil {
			t.Fatal(err)
		}
		o.Provider, o.Host = f.p, c
		return o
	}
	topo := filepath.Join(t.TempDir(), "cli.yaml")
	if err := os.WriteFile(topo, []byte(cliTopology), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := runCLI(t, "up", topo, "--keep-on-failure"); code != 1 {
		t.Fatalf("up on fake nodes: exit %d, want 1 (kept)\n%s\n%s", code, out, errs)
	}
	f.c = f.p.Lab("cli")
	f.mgr = fake.NewManager(map[string]string{common.LabelLab: "cli", common.LabelIngress: lab.EdgeProxy}, "m1", "w1", "w2")
	t.Cleanup(f.mgr.Close)
	for _, n := range f.c.Nodes() {
		cli, err := f.mgr.Client()
		if err != nil {
			t.Fatal(err)
		}
		n.(*fake.Node).EngineClient = cli
	}
	f.c.Reg = provider.Registry{Push: []string{f.reg.Addr()}, Pull: "registry:5000", Mirror: true}
	f.host.PushTo(f.reg)
	return f
}

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestList(t *testing.T) {
	f := newFakeCLI(t)
	f.mgr.SetVersion("20.10.24")
	code, out, errs := runCLI(t, "list")
	if code != 0 {
		t.Fatalf("list: exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "NAME PROVIDER NODES ENGINE AGE" {
		t.Fatalf("list:\n%s", out)
	}
	if got := strings.Join(strings.Fields(lines[1]), " "); !strings.HasPrefix(got, "cli docker 3 20.10.24 ") || !strings.HasSuffix(got, "s") {
		t.Errorf("list row %q, want cli docker 3 20.10.24 and an age in seconds", got)
	}

	code, out, _ = runCLI(t, "list", "--json")
	var labs []lab.Summary
	if err := json.Unmarshal([]byte(out), &labs); code != 0 || err != nil || len(labs) != 1 {
		t.Fatalf("list --json: exit %d, %v:\n%s", code, err, out)
	}
	if s := labs[0]; s.Name != "cli" || s.Nodes != 3 || s.Engine != "20.10.24" || time.Since(s.Created) > time.Minute {
		t.Errorf("list --json: %+v", s)
	}

	// No node's engine answers: the engine is "-", and a note says why.
	for _, n := range f.c.Nodes() {
		n.(*fake.Node).SetState(provider.Exited, false)
	}
	code, out, errs = runCLI(t, "list")
	if code != 0 || !strings.Contains(out, " 3      -  ") || !strings.Contains(errs, "note: lab cli: no node's engine told its version (m1 is exited; w1 is exited; w2 is exited)") {
		t.Errorf("list with every node exited: exit %d\n%s\n%s", code, out, errs)
	}
}

func TestListWithNoLabs(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	host := fake.NewEngine()
	defer host.Close()
	was := labOptions
	t.Cleanup(func() { labOptions = was })
	labOptions = func(o lab.Options) lab.Options {
		c, _ := host.Client()
		o.Provider, o.Host = fake.New(), c
		return o
	}
	if code, out, errs := runCLI(t, "list"); code != 0 || out != "" || !strings.Contains(errs, "No labs; start one with: scripts/swarmlab up") {
		t.Errorf("list: exit %d, %q, %q", code, out, errs)
	}
	if code, out, _ := runCLI(t, "list", "--json"); code != 0 || strings.TrimSpace(out) != "[]" {
		t.Errorf("list --json: exit %d, %q", code, out)
	}
}

// load pushes each image, says per image what happened and how long it
// took; a name this machine lacks is named, the others are loaded all the
// same, and load exits 1. Loading again pushes nothing.
func TestLoad(t *testing.T) {
	f := newFakeCLI(t)
	f.host.SetImage("myapp:1", "sha256:aaaa")
	f.host.Missing("ghost:1")
	code, out, errs := runCLI(t, "load", "myapp:1", "ghost:1", "team/tool:2", "--name", "cli")
	if code != 1 {
		t.Fatalf("load with a missing image: exit %d, want 1\n%s\n%s", code, out, errs)
	}
	t.Logf("stdout:\n%s\nstderr:\n%s", out, errs)
	rows := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		f := strings.Fields(l)
		rows[f[1]] = strings.Join(append([]string{f[0], f[2]}, f[4:]...), " ")
	}
	for img, want := range map[string]string{
		"myapp:1":     "✓ pushed nodes pull it as myapp:1",
		"team/tool:2": "✓ pushed nodes pull it as team/tool:2",
		"ghost:1":     "✗ failed",
	} {
		if rows[img] != want {
			t.Errorf("row of %s: %q, want %q", img, rows[img], want)
		}
	}
	for _, want := range []string{
		"swarmlab load: image ghost:1 is not in this machine's engine (" + f.host.Addr() + "), which load copies it from; build or pull it there first",
		"1 image of 3 not loaded (ghost:1); the other 2 were",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
	if f.reg.Image("library/myapp:1") != "sha256:aaaa" || f.reg.Image("team/tool:2") == "" {
		t.Errorf("the registry does not serve library/myapp:1 and team/tool:2 (asked %v)", f.reg.Asked())
	}

	pushes := len(f.host.Pushes())
	code, out, errs = runCLI(t, "load", "myapp:1")
	if code != 0 || !strings.Contains(out, "✓ myapp:1  unchanged") || len(f.host.Pushes()) != pushes {
		t.Errorf("a second load: exit %d, %d pushes more\n%s%s", code, len(f.host.Pushes())-pushes, out, errs)
	}
	if code, _, errs := runCLI(t, "load"); code != 2 || !strings.Contains(errs, "load needs at least one image") {
		t.Errorf("load with no image: exit %d, %s", code, errs)
	}
}

const webStack = `services:
  web:
    image: myapp:1
    ports:
      - {target: 80, published: 8080, mode: host}
    deploy:
      labels:
        io.swarmlab.url.web: "http://{addr}:8080/"
    secrets: [token]
secrets:
  token: {file: "${SWARMLAB_SECRET_TOKEN}"}
x-swarmlab:
  secrets:
    token: {generate: password}
`

// deploy is the lab's own stack deploy: the image check first (nothing
// reaches the swarm while an image is missing), then the stack, its wait,
// and its URLs.
func TestDeploy(t *testing.T) {
	f := newFakeCLI(t)
	path := filepath.Join(t.TempDir(), "web.yml")
	os.WriteFile(path, []byte(webStack), 0o644)

	code, out, errs := runCLI(t, "deploy", path)
	if code != 1 || !strings.Contains(errs, "service web: myapp:1 is missing; the lab serves redis:latest, ") ||
		!strings.Contains(errs, "; or load it from this machine's engine: swarmlab load myapp:1 --name cli") {
		t.Fatalf("deploy before the image is loaded: exit %d\n%s\n%s", code, out, errs)
	}
	if svcs := f.mgr.Services(); len(svcs) != 0 {
		t.Fatalf("a failed image check deployed %d services", len(svcs))
	}

	f.host.SetImage("myapp:1", "sha256:aaaa")
	if code, _, errs := runCLI(t, "load", "myapp:1"); code != 0 {
		t.Fatalf("load: %s", errs)
	}
	code, out, errs = runCLI(t, "deploy", path, "--name", "cli")
	if code != 0 {
		t.Fatalf("deploy: exit %d\n%s\n%s", code, out, errs)
	}
	t.Logf("deploy:\n%s", out)
	for _, want := range []string{
		"Deploying stack web from " + path + " on lab cli\n",
		"Stack web runs all its tasks on lab cli (",
		"Published:\n  web  http://10.0.0.10:8080/  web_web\n",
		"Secrets:  " + lab.StateDir("cli"),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("deploy output lacks %q", want)
		}
	}
	svcs := f.mgr.Services()
	if len(svcs) != 1 || svcs[0].Spec.Name != "web_web" || svcs[0].Spec.TaskTemplate.ContainerSpec.Image != "myapp:1" {
		t.Errorf("services %+v, want web_web running myapp:1", svcs)
	}

	// --stack names it; a second deploy updates rather than adds.
	if code, _, errs := runCLI(t, "deploy", path, "--stack", "web"); code != 0 || len(f.mgr.Services()) != 1 {
		t.Errorf("second deploy: exit %d, %d services: %s", code, len(f.mgr.Services()), errs)
	}
}

// deploy's errors say what it wanted, what it found, and what to do; a
// stack file's x-swarmlab errors name file:line:field.
func TestDeployErrors(t *testing.T) {
	newFakeCLI(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yml")
	os.WriteFile(bad, []byte("services:\n  web: {image: nginx}\nx-swarmlab:\n  secrets:\n    tok: {generate: bogus}\n"), 0o644)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"deploy"}, 2, "deploy needs one stack file (STACK.yml), got 0 arguments"},
		{[]string{"deploy", filepath.Join(dir, "none.yml")}, 1, "stack file " + filepath.Join(dir, "none.yml") + ": stat"},
		{[]string{"deploy", dir}, 1, "is a directory; want the path of a compose file in it (" + filepath.Join(dir, "stack.yml") + ")"},
		{[]string{"deploy", bad, "--stack", "Bad_Name"}, 1, `--stack: "Bad_Name" is not a valid stack name: expected at most 63 lowercase letters`},
		{[]string{"deploy", bad}, 1, bad + ":5: x-swarmlab.secrets.tok.generate: \"bogus\" is not one of password, tls"},
		{[]string{"deploy", bad, "--name", "nope"}, 1, `no such lab "nope"`},
	} {
		code, _, errs := runCLI(t, c.args...)
		if code != c.code || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", c.args, code, errs, c.code, c.want)
		}
	}
}

func TestDefaultStackName(t *testing.T) {
	for in, want := range map[string]string{
		"web.yml":                      "web",
		"app/vote/stack.yml":           "vote",
		"/x/shop/compose.yaml":         "shop",
		"/x/shop/docker-compose.yml":   "shop",
		"/x/shop/monitoring.stack.yml": "monitoring.stack",
	} {
		if got := defaultStackName(in); got != want {
			t.Errorf("defaultStackName(%q) = %q, want %q", in, got, want)
		}
	}
}

// up's report writes the lab's docker context, at the manager env points
// at; down removes it. A context that cannot be written is a warning.
func TestUpWritesAndDownRemovesTheDockerContext(t *testing.T) {
	f := newFakeCLI(t)
	l, err := lab.OpenWith(context.Background(), "cli", labOptions(lab.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if err := printUp(context.Background(), &out, &errb, l); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "  # or: docker --context swarmlab-cli node ls\n") || errb.Len() != 0 {
		t.Errorf("up's report:\n%s\nstderr %q", out.String(), errb.String())
	}
	if host, err := contextHost("cli"); err != nil || host != "fake://m1" {
		t.Errorf("context swarmlab-cli points at %q (%v), want m1's engine, fake://m1", host, err)
	}
	_, env, _ := runCLI(t, "env", "cli")
	if !strings.Contains(env, "export DOCKER_HOST=fake://m1\n") {
		t.Errorf("env does not point at the context's engine:\n%s", env)
	}

	code, down, errs := runCLI(t, "down", "cli")
	if code != 0 || !strings.Contains(down, "Removed lab cli\nRemoved docker context swarmlab-cli\n") {
		t.Errorf("down: exit %d\n%s\n%s", code, down, errs)
	}
	if host, err := contextHost("cli"); err != nil || host != "" {
		t.Errorf("after down, context swarmlab-cli points at %q (%v)", host, err)
	}
	if f.p.Lab("cli") != nil {
		t.Error("down left the fake lab")
	}

	// DOCKER_CONFIG a file: no context store, and up goes on.
	notDir := filepath.Join(t.TempDir(), "file")
	os.WriteFile(notDir, nil, 0o644)
	t.Setenv("DOCKER_CONFIG", notDir)
	out.Reset()
	errb.Reset()
	if err := printUp(context.Background(), &out, &errb, l); err != nil {
		t.Fatalf("up's report failed on a context it could not write: %v", err)
	}
	if !strings.Contains(errb.String(), "warning: docker context swarmlab-cli not written (") || strings.Contains(out.String(), "--context") {
		t.Errorf("up without a context store:\n%s\nstderr %q", out.String(), errb.String())
	}
}

// A bridged lab's URLs are printed where its forwarder serves them on
// 127.0.0.1; with no forwarder, at the node's address.
func TestPublishedURLsOfABridgedLabAreOnLoopback(t *testing.T) {
	f := newFakeCLI(t)
	f.c.Bridge = true
	path := filepath.Join(t.TempDir(), "web.yml")
	os.WriteFile(path, []byte(webStack), 0o644)
	f.host.SetImage("myapp:1", "sha256:aaaa")
	if code, _, errs := runCLI(t, "load", "myapp:1"); code != 0 {
		t.Fatalf("load: %s", errs)
	}
	code, out, errs := runCLI(t, "deploy", path)
	if code != 0 || !strings.Contains(out, "Published:\n  web  http://10.0.0.10:8080/  web_web\n") {
		t.Fatalf("deploy with no forwarder: exit %d, want the node's address\n%s\n%s", code, out, errs)
	}

	ctx, stop := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		var out, errb bytes.Buffer
		done <- run(ctx, []string{"forward", "cli"}, &out, &errb)
	}()
	defer func() {
		stop()
		if code := <-done; code != 0 {
			t.Errorf("forward: exit %d", code)
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for _, ok := lab.Forwarder("cli"); !ok; _, ok = lab.Forwarder("cli") {
		if time.Now().After(deadline) {
			t.Fatal("the forwarder did not write what it serves within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	code, out, errs = runCLI(t, "status")
	var url string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "web" && f[2] == "web_web" {
			url = f[1]
		}
	}
	if code != 0 || !strings.HasPrefix(url, "http://127.0.0.1:") || url == "http://127.0.0.1:8080/" {
		t.Errorf("status with a forwarder: exit %d, web at %q, want a listener of the forwarder on 127.0.0.1\n%s\n%s", code, url, out, errs)
	}
}
