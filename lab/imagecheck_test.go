package lab

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/swarmlab/swarmlab/lab/images"
	"github.com/swarmlab/swarmlab/lab/internal/registry"
	"github.com/swarmlab/swarmlab/lab/provider"
	"github.com/swarmlab/swarmlab/lab/provider/fake"
	"github.com/swarmlab/swarmlab/lab/topology"
)

// fakeRegistry answers the registry API's manifest requests: found for
// the targets it serves ("library/redis:7"), not found for any other. It
// returns its "host:port" and the targets it was asked about.
func fakeRegistry(t *testing.T, serves ...string) (addr string, asked func() []string) {
	t.Helper()
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		repo, ref, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/v2/"), "/manifests/")
		if !ok || (r.Method != http.MethodHead && r.Method != http.MethodGet) {
			http.NotFound(w, r)
			return
		}
		target := repo + ":" + ref
		if strings.HasPrefix(ref, "sha256:") {
			target = repo + "@" + ref
		}
		mu.Lock()
		seen = append(seen, target)
		mu.Unlock()
		if !slices.Contains(serves, target) {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/vnd.docker.distribution.manifest.v2+json")
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen)
	}
}

// standardTargets are what pushStandardImages puts in a mirror registry.
func standardTargets() []string {
	var out []string
	for _, img := range images.Standard() {
		for _, pub := range img.Public {
			out = append(out, registry.Name(pub))
		}
	}
	return out
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "stack.yml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// checkLab is a lab on the fake provider whose registry is addr, with a
// manager whose engine is a fake that records what it is asked.
func checkLab(t *testing.T, reg provider.Registry) (*Lab, *fake.Engine) {
	t.Helper()
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	e := fake.NewEngine()
	t.Cleanup(e.Close)
	cli, err := e.Client()
	if err != nil {
		t.Fatal(err)
	}
	c := fake.NewCluster("imgcheck", "run1")
	c.Reg = reg
	c.Add("m1", topology.RoleManager, "10.0.0.10").EngineClient = cli
	l := &Lab{name: "imgcheck", info: Info{Ingress: EdgeProxy}, cluster: c, host: cli}
	t.Cleanup(func() { removeState("imgcheck") })
	return l, e
}

const missingStack = `services:
  cache:
    image: redis:7
  queue:
    image: ${QUEUE_IMAGE:-redis:alpine}
  sessions:
    image: redis:alpine
  db:
    image: postgres:15-alpine
`

// Where the lab registry lacks images a stack asks for, its deploy fails
// before anything reaches the swarm, with one line per missing image.
func TestDeployFailsBeforeTheSwarmOnMissingImages(t *testing.T) {
	addr, asked := fakeRegistry(t, standardTargets()...)
	l, engine := checkLab(t, provider.Registry{Push: []string{addr}, Pull: "registry:5000", Mirror: true})
	path := writeFile(t, missingStack)

	_, err := l.Stacks().Deploy(context.Background(), "shop", path, StackOptions{})
	if err == nil {
		t.Fatal("deploy of a stack with missing images: no error")
	}
	t.Logf("the error:\n%v", err)
	msg := err.Error()
	var lines []string
	for _, line := range strings.Split(msg, "\n") {
		if strings.Contains(line, " is missing;") {
			lines = append(lines, strings.TrimSpace(line))
		}
	}
	want := []string{
		"service db: postgres:15-alpine is missing; the lab serves postgres:latest, postgres:15; or load it from this machine's engine: swarmlab load postgres:15-alpine --name imgcheck",
		"services queue, sessions: redis:alpine is missing; the lab serves redis:latest, redis:7; or load it from this machine's engine: swarmlab load redis:alpine --name imgcheck",
	}
	if !slices.Equal(lines, want) {
		t.Errorf("missing-image lines:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	for _, s := range []string{"stack shop asks for 2 images", "nothing was deployed", "swarmlab load"} {
		if !strings.Contains(msg, s) {
			t.Errorf("the error does not say %q", s)
		}
	}
	if strings.Contains(msg, "redis:7 is missing") {
		t.Error("redis:7, which the registry serves, is reported missing")
	}
	if got := asked(); !slices.Contains(got, "library/redis:7") || !slices.Contains(got, "library/redis:alpine") || !slices.Contains(got, "library/postgres:15-alpine") {
		t.Errorf("the registry was asked about %v, want library/redis:7, library/redis:alpine, library/postgres:15-alpine", got)
	}
	// A node tried to pull each missing docker.io image (the fake engine
	// cannot: no registry is reachable), and nothing else was asked of it.
	pulls := 0
	for _, c := range engine.Calls() {
		switch {
		case strings.HasSuffix(c, "/images/create"):
			pulls++
		case strings.HasSuffix(c, "/_ping"):
		default:
			t.Errorf("the node's engine was asked %s; want only pull tries, nothing done on the swarm", c)
		}
	}
	if pulls != 2 {
		t.Errorf("%d pull tries on the node, want one for each of the 2 missing docker.io images: %v", pulls, engine.Calls())
	}
}

// Where a node can pull a docker.io image itself (dockerd falls back from
// its mirror, the lab registry, to docker.io), it is not missing: a
// warning says so. (Red when the check ignores the fallback: redis:alpine
// is reported missing on a machine that can pull it.)
func TestMissingImageANodeCanPullIsAWarning(t *testing.T) {
	addr, _ := fakeRegistry(t, standardTargets()...)
	l, engine := checkLab(t, provider.Registry{Push: []string{addr}, Pull: "registry:5000", Mirror: true})
	engine.Pullable("redis:alpine")
	path := writeFile(t, missingStack)
	st, _, err := l.prepareStack(context.Background(), "shop", path, nil, true, 0, nil)
	if err == nil {
		t.Fatal("postgres:15-alpine, which no node can pull, passed the check")
	}
	if strings.Contains(err.Error(), "redis:alpine is missing") || !strings.Contains(err.Error(), "postgres:15-alpine is missing") {
		t.Errorf("error %v: want only postgres:15-alpine missing", err)
	}
	found := false
	for _, w := range st.Warnings {
		found = found || strings.Contains(w, "redis:alpine is not in the lab registry; node m1 pulled it from docker.io itself")
	}
	if !found {
		t.Errorf("warnings %q, want one saying m1 pulled redis:alpine itself", st.Warnings)
	}
}

// cacheLab is checkLab with a lab registry serving the standard images and
// a docker.io cache at cacheAddr.
func cacheLab(t *testing.T, cacheAddr string) (*Lab, *fake.Engine) {
	t.Helper()
	addr, _ := fakeRegistry(t, standardTargets()...)
	return checkLab(t, provider.Registry{Push: []string{addr}, Pull: "registry:5000", Mirror: true,
		DockerIO: provider.DockerIOCache{Pull: "dockerio:5000", Query: cacheAddr, Upstream: "http://upstream.test:5000"}})
}

// pulls lists the images the node's engine was asked to pull
// ("redis:alpine"), and fails the test on anything else it was asked but
// pings and image looks.
func pulls(t *testing.T, e *fake.Engine) []string {
	t.Helper()
	var out []string
	for _, c := range e.Calls() {
		switch {
		case strings.HasSuffix(c, "/images/create"):
			out = append(out, c)
		case strings.HasSuffix(c, "/_ping"), strings.Contains(c, "/images/") && strings.HasSuffix(c, "/json"):
		default:
			t.Errorf("the node's engine was asked %s; want only pulls, nothing done on the swarm", c)
		}
	}
	return out
}

// Where the lab has a docker.io cache, a docker.io name the lab registry
// lacks is asked of the cache; one it serves is not missing, and one node
// pulls it through the cache before the deploy, once; one it lacks is
// missing, with no node pull tried. (Red when the check ignores the cache:
// no cache is asked, and the node tries both images itself.)
func TestADockerIONameTheCacheServesIsNotMissing(t *testing.T) {
	cache, asked := fakeRegistry(t, "library/redis:alpine")
	l, engine := cacheLab(t, cache)
	engine.Pullable("redis:alpine")
	st, _, err := l.prepareStack(context.Background(), "shop", writeFile(t, missingStack), nil, true, 0, nil)
	if err == nil {
		t.Fatal("postgres:15-alpine, which neither registry serves, passed the check")
	}
	if strings.Contains(err.Error(), "redis:alpine is missing") || !strings.Contains(err.Error(), "service db: postgres:15-alpine is missing;") {
		t.Errorf("error %v: want only postgres:15-alpine missing", err)
	}
	want := "stack shop: redis:alpine is not in the lab registry; it came through the lab's docker.io cache (of http://upstream.test:5000), which node m1 pulled it from"
	if !slices.Contains(st.Warnings, want) {
		t.Errorf("warnings %q, want %q", st.Warnings, want)
	}
	if got := asked(); !slices.Equal(slices.Sorted(slices.Values(got)), []string{"library/postgres:15-alpine", "library/redis:alpine"}) {
		t.Errorf("the cache was asked about %v, want library/postgres:15-alpine and library/redis:alpine (redis:7 is the lab registry's)", got)
	}
	if got := pulls(t, engine); len(got) != 1 {
		t.Errorf("the node pulled %v; want one pull, of redis:alpine, through the cache", got)
	}
}

// A manifest the cache serves but that no node can pull (its blobs are not
// upstream, or the nodes lack the cache as their mirror) is missing, and a
// warning says why.
func TestAnImageTheNodesCannotPullThroughTheCacheIsMissing(t *testing.T) {
	cache, _ := fakeRegistry(t, "library/redis:alpine")
	l, _ := cacheLab(t, cache) // the fake engine pulls nothing
	st, _, err := l.prepareStack(context.Background(), "shop", writeFile(t, "services:\n  s: {image: \"redis:alpine\"}\n"), nil, true, 0, nil)
	if err == nil || !strings.Contains(err.Error(), "service s: redis:alpine is missing;") {
		t.Fatalf("error %v, want redis:alpine missing", err)
	}
	found := false
	for _, w := range st.Warnings {
		found = found || strings.Contains(w, "has a manifest of redis:alpine, but node m1 could not pull it")
	}
	if !found {
		t.Errorf("warnings %q, want one saying m1 could not pull redis:alpine", st.Warnings)
	}
}

// A cache that does not answer at all (one whose upstream is unreachable
// answers 404, as for postgres:15-alpine above): the images are missing, a
// warning says the cache could not be asked, and no node pull is tried.
func TestADockerIOCacheThatCannotBeAskedLeavesTheImagesMissing(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	closed := strings.TrimPrefix(srv.URL, "http://")
	srv.Close()
	l, engine := cacheLab(t, closed)
	engine.Pullable("redis:alpine")
	st, _, err := l.prepareStack(context.Background(), "shop", writeFile(t, missingStack), nil, true, 0, nil)
	if err == nil || !strings.Contains(err.Error(), "redis:alpine is missing;") || !strings.Contains(err.Error(), "postgres:15-alpine is missing;") {
		t.Fatalf("error %v, want redis:alpine and postgres:15-alpine missing", err)
	}
	n := 0
	for _, w := range st.Warnings {
		if strings.Contains(w, "could not ask the lab's docker.io cache (of http://upstream.test:5000)") {
			n++
		}
	}
	if n != 2 {
		t.Errorf("warnings %q, want one per image saying the cache could not be asked", st.Warnings)
	}
	if got := pulls(t, engine); len(got) != 0 {
		t.Errorf("the node pulled %v; want no pull tried", got)
	}
}

// A stack whose images the lab serves, its own or the registry's, passes
// the check; images of other registries give warnings, not failures.
func TestPrepareStackPassesWhenEveryImageIsServed(t *testing.T) {
	addr, _ := fakeRegistry(t, append(standardTargets(), "team/thumbs:1")...)
	l, engine := checkLab(t, provider.Registry{Push: []string{addr}, Pull: "registry:5000", Mirror: true})
	path := writeFile(t, `services:
  cache: {image: "redis:7"}
  cache2: {image: "docker.io/library/redis"}
  db: {image: postgres:15}
  edge: {image: haproxy}
  web: {image: nginx:latest}
  thumbs: {image: "${SWARMLAB_REGISTRY}/team/thumbs:1"}
  app: {image: "${SWARMLAB_IMAGE_APP}"}
  elsewhere: {image: "ghcr.io/team/tool:2"}
`)
	imgs := []*stackImage{{name: "app", local: "swarmlab/app:abc123"}}
	st, cfg, err := l.prepareStack(context.Background(), "shop", path, imgs, true, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg == nil || len(cfg.Services) != 8 {
		t.Fatalf("config %+v, want 8 services", cfg)
	}
	if len(st.Warnings) != 1 || !strings.Contains(st.Warnings[0], "ghcr.io/team/tool:2 is from registry ghcr.io") || !strings.Contains(st.Warnings[0], "service elsewhere") {
		t.Errorf("warnings %q, want one, on ghcr.io/team/tool:2 of service elsewhere", st.Warnings)
	}
	if calls := engine.Calls(); len(calls) != 0 {
		t.Errorf("the manager's engine was called: %v", calls)
	}
}

// A missing image in the lab registry's own names is reported with the
// stack's images among what the lab serves; where the registry is not the
// nodes' mirror (ssh), docker.io names are not checked at all.
func TestImageCheckWithoutMirror(t *testing.T) {
	addr, asked := fakeRegistry(t)
	l, _ := checkLab(t, provider.Registry{Push: []string{addr}, Pull: "127.0.0.1:5000", Mirror: false})
	path := writeFile(t, `services:
  cache: {image: "redis:alpine"}
  thumbs: {image: "${SWARMLAB_REGISTRY}/team/thumbs:1"}
  app: {image: "${SWARMLAB_IMAGE_APP}"}
`)
	imgs := []*stackImage{{name: "app", local: "swarmlab/app:abc123"}}
	_, _, err := l.prepareStack(context.Background(), "shop", path, imgs, true, 0, nil)
	if err == nil {
		t.Fatal("no error for a missing 127.0.0.1:5000/team/thumbs:1")
	}
	want := "service thumbs: 127.0.0.1:5000/team/thumbs:1 is missing; the lab serves ${SWARMLAB_IMAGE_APP} (app); or load it from this machine's engine: swarmlab load 127.0.0.1:5000/team/thumbs:1 --name imgcheck"
	if !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "redis") {
		t.Errorf("error:\n%v\nwant the line %q and nothing on redis", err, want)
	}
	if got := asked(); !slices.Equal(got, []string{"team/thumbs:1"}) {
		t.Errorf("the registry was asked about %v, want only team/thumbs:1", got)
	}
}

// The stacks of this repository ask only for the standard images the lab
// registry serves, and for their own.
func TestTheRepositorysStacksPassTheImageCheck(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, pattern := range []string{"app/*/stack.yml", "app/*/e2e/testdata/*/stack.yml", "e2e/testdata/*/stack.yml", "lab/testdata/*/stack.yml", "lab/topology/testdata/app/*/stack.yml"} {
		m, err := filepath.Glob(filepath.Join(root, pattern))
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, m...)
	}
	if len(paths) < 5 {
		t.Fatalf("found only %d stack files: %v", len(paths), paths)
	}
	addr, _ := fakeRegistry(t, standardTargets()...)
	l, _ := checkLab(t, provider.Registry{Push: []string{addr}, Pull: "registry:5000", Mirror: true})
	for _, path := range paths {
		rel, _ := filepath.Rel(root, path)
		specs, err := stackImageSpecs(path)
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			continue
		}
		var imgs []*stackImage
		for i := range specs {
			specs[i].local = specs[i].spec.Repo + ":test"
			imgs = append(imgs, &specs[i])
		}
		st, _, err := l.prepareStack(context.Background(), "s", path, imgs, true, 0, nil)
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			continue
		}
		if len(st.Warnings) > 0 {
			t.Errorf("%s: warnings %q", rel, st.Warnings)
		}
	}
}

func TestParseImageRef(t *testing.T) {
	for in, want := range map[string]imageRef{
		"redis":                         {dockerHub, "library/redis", ":latest"},
		"redis:7":                       {dockerHub, "library/redis", ":7"},
		"bitnami/redis:7":               {dockerHub, "bitnami/redis", ":7"},
		"docker.io/redis:7":             {dockerHub, "library/redis", ":7"},
		"index.docker.io/library/nginx": {dockerHub, "library/nginx", ":latest"},
		"registry:5000/x":               {"registry:5000", "x", ":latest"},
		"registry:5000/team/app:v1":     {"registry:5000", "team/app", ":v1"},
		"localhost/app:1":               {"localhost", "app", ":1"},
		"ghcr.io/o/app@sha256:abc":      {"ghcr.io", "o/app", "@sha256:abc"},
		"redis:7@sha256:abc":            {dockerHub, "library/redis", "@sha256:abc"},
	} {
		if got := parseImageRef(in); got != want {
			t.Errorf("parseImageRef(%q) = %+v, want %+v", in, got, want)
		}
	}
}
