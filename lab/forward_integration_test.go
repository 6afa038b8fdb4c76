//go:build integration

package lab_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/swarmlab/swarmlab/lab"
	"github.com/swarmlab/swarmlab/lab/internal/engine"
	"github.com/swarmlab/swarmlab/lab/labtest"
	"github.com/swarmlab/swarmlab/lab/provider"
	"github.com/swarmlab/swarmlab/lab/provider/docker"
)

// TestForwarderServesARelayedLab brings a lab up reached through its relay
// (as on an engine that is not this machine's), runs its forwarder, and
// checks that a later Open uses the forwarder's addresses, that each node
// engine answers there, and that the forwarder stops when asked. Without
// the forwarder, what `up` prints would die with the command.
func TestForwarderServesARelayedLab(t *testing.T) {
	t.Setenv(docker.AccessEnv, "tunnel")
	l := upLab(t, "swarm-3", "it-forward")
	if !l.Relayed() {
		t.Fatalf("lab made with %s=tunnel is not relayed", docker.AccessEnv)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- lab.Forward(ctx, l.Name(), t.Logf) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("forward: %v", err)
		}
		if _, ok := lab.Forwarder(l.Name()); ok {
			t.Errorf("the forwarder's file is still there after it stopped")
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for _, ok := lab.Forwarder(l.Name()); !ok; _, ok = lab.Forwarder(l.Name()) {
		if time.Now().After(deadline) {
			t.Fatal("the forwarder did not write what it serves within 30s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	again, err := lab.Open(ctx, l.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	hosts := map[string]string{}
	for _, n := range again.Cluster().Nodes() {
		hosts[n.Name()] = n.DockerHost()
	}
	// Listeners are made on first use: what the opening process listens on
	// is known only once every DockerHost was asked for.
	own := map[string]bool{}
	for _, addr := range again.Cluster().(provider.Relayed).Forwards() {
		own[addr] = true
	}
	for _, n := range again.Cluster().Nodes() {
		host := hosts[n.Name()]
		if !strings.HasPrefix(host, "tcp://127.0.0.1:") {
			t.Errorf("node %s: DockerHost %s, want one on this machine's loopback", n.Name(), host)
		}
		if own[strings.TrimPrefix(host, "tcp://")] {
			t.Errorf("node %s: DockerHost %s is a listener of the opening process, not the forwarder's", n.Name(), host)
		}
		c, err := engine.Connect(host)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := engine.Ping(ctx, c); err != nil {
			t.Errorf("node %s: engine at the forwarder's %s: %v", n.Name(), host, err)
		}
		c.Close()
	}
}

// TestUpServesADirectLabsURLsOnLoopback runs the CLI as a user does:
// `swarmlab up` of a lab reached directly (on this Linux host's engine)
// whose stack publishes two ports. Once up has exited, every URL it printed
// is on 127.0.0.1 and answers, served by the forwarder it left behind, and
// `status` prints the same ones; the lab's own Endpoints stay the nodes'
// bridge addresses. After `swarmlab down`, the URLs' ports are closed and
// the forwarder process is gone.
//
// The lab is reached as the engine says (not forced direct: a lab on an
// engine elsewhere, a CI sidecar's, cannot be), and the test is skipped
// where that is relayed.
func TestUpServesADirectLabsURLsOnLoopback(t *testing.T) {
	const name = "it-loopback"
	ctx := context.Background()
	bin := buildCLI(t)
	cfg := t.TempDir()
	cli := func(args ...string) (string, error) {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(cctx, bin, args...)
		// Its docker contexts in a directory of the test's, not the user's.
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+cfg)
		var out bytes.Buffer
		cmd.Stdout = &out
		cmd.Stderr = testWriter{t, "swarmlab " + args[0] + ": "}
		err := cmd.Run()
		return out.String(), err
	}
	cli("down", name) // a lab left by a killed run
	t.Cleanup(func() {
		if _, err := cli("down", name); err != nil {
			t.Errorf("swarmlab down %s: %v", name, err)
		}
		assertNothingLeft(t, name)
	})
	out, err := cli("up", "testdata/web-3.yaml", "--name", name)
	t.Logf("swarmlab up:\n%s", out)
	if err != nil {
		t.Fatalf("swarmlab up: %v", err)
	}
	if l, err := lab.Open(ctx, name); err == nil {
		defer labtest.RemoveOnInterrupt(l)()
		defer l.Close()
		if l.Relayed() {
			t.Skipf("the engine is not this machine's (or %s=tunnel): the lab is relayed, as TestForwarderServesARelayedLab tests", docker.AccessEnv)
		}
		eps, err := l.Endpoints(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range eps {
			if !strings.HasPrefix(e.URL, "http://10.") {
				t.Errorf("the lab's own endpoint %s of %s is %s, want the node's bridge address", e.Name, e.Service, e.URL)
			}
		}
	} else {
		t.Fatal(err)
	}

	urls := publishedURLs(out)
	if len(urls) != 2 {
		t.Fatalf("up printed %d published URLs (%v), want the stack's two ports", len(urls), urls)
	}
	if strings.Contains(out, "http://10.") {
		t.Errorf("up printed a bridge address for people to open")
	}
	if !strings.Contains(out, "export DOCKER_HOST=tcp://127.0.0.1:") {
		t.Errorf("up's DOCKER_HOST is not on this machine's loopback")
	}
	pid, ok := lab.Forwarder(name)
	if !ok || pid == os.Getpid() {
		t.Fatalf("no forwarder process serves lab %s after up (pid %d, %v)", name, pid, ok)
	}
	hc := http.Client{Timeout: 10 * time.Second}
	for _, u := range urls {
		if !strings.HasPrefix(u, "http://127.0.0.1:") {
			t.Errorf("up printed %s, want a URL on 127.0.0.1", u)
			continue
		}
		r, err := hc.Get(u)
		if err != nil {
			t.Errorf("GET %s after up exited: %v", u, err)
			continue
		}
		r.Body.Close()
		if r.StatusCode != http.StatusOK {
			t.Errorf("GET %s after up exited: %s", u, r.Status)
		}
	}
	status, err := cli("status", name)
	if err != nil {
		t.Fatalf("swarmlab status: %v", err)
	}
	if again := publishedURLs(status); !slices.Equal(again, urls) {
		t.Errorf("status prints %v, up printed %v: want the same URLs while the lab lives", again, urls)
	}

	if _, err := cli("down", name); err != nil {
		t.Fatalf("swarmlab down: %v", err)
	}
	for _, u := range urls {
		addr := strings.TrimSuffix(strings.TrimPrefix(u, "http://"), "/")
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after down", addr)
		}
	}
	if running(pid) {
		t.Errorf("the forwarder (pid %d) still runs after down", pid)
	}
}

// publishedURLs are the URLs in the Published: block of up's or status's
// report, in order.
func publishedURLs(report string) []string {
	var urls []string
	in := false
	for _, line := range strings.Split(report, "\n") {
		switch {
		case strings.HasPrefix(line, "Published:"):
			in = true
		case in && strings.HasPrefix(line, "  "):
			for _, f := range strings.Fields(line) {
				if strings.HasPrefix(f, "http://") || strings.HasPrefix(f, "https://") {
					urls = append(urls, f)
				}
			}
		default:
			in = false
		}
	}
	return urls
}

// running reports whether process pid still runs: not gone, and not a
// zombie (where nothing reaps orphans, as under some containers' init, an
// exited forwarder stays one).
func running(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := strings.LastIndex(string(b), ") ")
	return i < 0 || !strings.HasPrefix(string(b[i+2:]), "Z")
}

// buildCLI builds the swarmlab command into the test's directory.
func buildCLI(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "swarmlab")
	goCmd := "go"
	if _, err := exec.LookPath(goCmd); err != nil {
		goCmd = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	build := exec.Command(goCmd, "build", "-o", bin, "github.com/swarmlab/swarmlab/lab/cmd/swarmlab")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the CLI: %v\n%s", err, out)
	}
	return bin
}

// testWriter logs what a command writes, a write at a time.
type testWriter struct {
	t      *testing.T
	prefix string
}

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s%s", w.prefix, strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
