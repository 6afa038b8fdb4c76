package lab

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/swarmlab/swarmlab/lab/provider/common"
	"github.com/swarmlab/swarmlab/lab/provider/fake"
)

// bridgedLab is a fake lab whose one node, m1, is at 127.0.0.1 (so that
// what it "publishes" is a server of the test's), reached directly and
// bridged: its forwarder is to serve its published ports on 127.0.0.1.
type bridgedLab struct {
	opts Options
	c    *fake.Cluster
	mgr  *fake.Manager
}

func newBridgedLab(t *testing.T, name string) *bridgedLab {
	t.Helper()
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	host := fake.NewEngine()
	t.Cleanup(host.Close)
	hc, err := host.Client()
	if err != nil {
		t.Fatal(err)
	}
	mgr := fake.NewManager(map[string]string{common.LabelLab: name}, "m1")
	t.Cleanup(mgr.Close)
	mc, err := mgr.Client()
	if err != nil {
		t.Fatal(err)
	}
	c := fake.NewCluster(name, "r1")
	c.Bridge = true
	c.Add("m1", "manager", "127.0.0.1").EngineClient = mc
	p := fake.New()
	p.Add(c)
	// Where the lab's record would be, and the forwarder writes.
	if err := os.MkdirAll(StateDir(name), 0o700); err != nil {
		t.Fatal(err)
	}
	return &bridgedLab{opts: Options{Provider: p, Host: hc}, c: c, mgr: mgr}
}

// publish starts a web server on 127.0.0.1 that answers body, and a
// service that publishes its port in host mode with a URL label, as a stack
// on m1 would; it returns the port.
func (b *bridgedLab) publish(t *testing.T, service, body string) uint16 {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) }))
	t.Cleanup(srv.Close)
	_, p, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	port, _ := strconv.Atoi(p)
	mc, err := b.mgr.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	_, err = mc.ServiceCreate(context.Background(), client.ServiceCreateOptions{Spec: swarm.ServiceSpec{
		Annotations:  swarm.Annotations{Name: service, Labels: map[string]string{common.LabelURLPrefix + service: fmt.Sprintf("http://{addr}:%d/", port)}},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "web"}},
		EndpointSpec: &swarm.EndpointSpec{Ports: []swarm.PortConfig{{TargetPort: 80, PublishedPort: uint32(port), PublishMode: swarm.PortConfigPublishModeHost}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return uint16(port)
}

func urlOf(t *testing.T, eps []Endpoint, err error, name string) string {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range eps {
		if e.Name == name {
			return e.URL
		}
	}
	t.Fatalf("no endpoint %s in %+v", name, eps)
	return ""
}

func get(t *testing.T, url string) string {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	r, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return string(b)
}

// unbridged is the same lab as a provider that does not bridge it would
// hand it back (relayed, or ssh): its published addresses are for people
// too.
type unbridged struct{ *fake.Cluster }

func (unbridged) Bridged() bool { return false }

// A bridged lab's URLs, as people are given them, are its forwarder's
// listeners on 127.0.0.1, the same while it runs; what the lab's own code
// dials stays the node's address. Without a forwarder, and for a lab that
// is not bridged, the URL is the node's address. A port published after
// the forwarder started is given the time to be served. Once the lab is
// gone, the forwarder stops and its listeners close.
func TestUserURLsOfABridgedLabAreItsForwardersOnLoopback(t *testing.T) {
	ctx := context.Background()
	b := newBridgedLab(t, "fwd")
	port := b.publish(t, "web", "hello from web")
	direct := fmt.Sprintf("http://127.0.0.1:%d/", port)

	l, err := OpenWith(ctx, "fwd", b.opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if !l.Forwarded() {
		t.Fatal("a bridged lab does not want a forwarder")
	}
	start := time.Now()
	eps, err := l.UserEndpoints(ctx)
	if got := urlOf(t, eps, err, "web"); got != direct || time.Since(start) > forwardCatchUp/2 {
		t.Errorf("with no forwarder: %s after %s, want the node's %s at once", got, time.Since(start), direct)
	}

	fctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- ForwardWith(fctx, "fwd", b.opts, t.Logf) }()
	deadline := time.Now().Add(10 * time.Second)
	for _, ok := Forwarder("fwd"); !ok; _, ok = Forwarder("fwd") {
		if time.Now().After(deadline) {
			t.Fatal("the forwarder did not write what it serves within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}

	eps, err = l.UserEndpoints(ctx)
	local := urlOf(t, eps, err, "web")
	if !strings.HasPrefix(local, "http://127.0.0.1:") || local == direct {
		t.Fatalf("with a forwarder: %s, want one of its listeners on 127.0.0.1, not the node's %s", local, direct)
	}
	if got := get(t, local); got != "hello from web" {
		t.Errorf("GET %s = %q, want the published server's answer", local, got)
	}
	eps, err = l.UserEndpoints(ctx)
	if again := urlOf(t, eps, err, "web"); again != local {
		t.Errorf("asked again: %s, want the same %s", again, local)
	}
	eps, err = l.Endpoints(ctx)
	if got := urlOf(t, eps, err, "web"); got != direct {
		t.Errorf("Endpoints (what the lab dials itself) = %s, want the node's %s", got, direct)
	}
	other := &Lab{name: "fwd", cluster: unbridged{b.c}, prov: b.opts.Provider}
	eps, err = other.UserEndpoints(ctx)
	if got := urlOf(t, eps, err, "web"); got != direct {
		t.Errorf("a lab that is not bridged: %s, want what PublishedAddr gives, %s", got, direct)
	}

	// Published after the forwarder's last look: UserEndpoints waits for it.
	later := b.publish(t, "api", "hello from api")
	eps, err = l.UserEndpoints(ctx)
	api := urlOf(t, eps, err, "api")
	if api == fmt.Sprintf("http://127.0.0.1:%d/", later) || !strings.HasPrefix(api, "http://127.0.0.1:") {
		t.Errorf("a port published later: %s, want the forwarder's listener for it", api)
	} else if got := get(t, api); got != "hello from api" {
		t.Errorf("GET %s = %q", api, got)
	}

	b.opts.Provider.Delete(ctx, "fwd")
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("forward: %v", err)
		}
	case <-time.After(3 * forwardPoll):
		t.Fatal("the forwarder did not stop once the lab was gone")
	}
	if c, err := net.DialTimeout("tcp", strings.TrimSuffix(strings.TrimPrefix(local, "http://"), "/"), time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts after the forwarder stopped", local)
	}
	if _, ok := Forwarder("fwd"); ok {
		t.Error("the forwarder's file is still there after it stopped")
	}
}

// A lab that is neither relayed nor bridged (ssh hosts' own addresses) has
// nothing to forward: no forwarder is started for it, and Forward says so.
func TestForwardRefusesALabWithNothingToForward(t *testing.T) {
	b := newBridgedLab(t, "plain")
	b.c.Bridge = false
	l, err := OpenWith(context.Background(), "plain", b.opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.Forwarded() {
		t.Error("a lab neither relayed nor bridged wants a forwarder")
	}
	err = ForwardWith(context.Background(), "plain", b.opts, t.Logf)
	if err == nil || !strings.Contains(err.Error(), "nothing to forward") {
		t.Errorf("Forward: %v", err)
	}
}
