//go:build integration

package lab_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/swarmlab/swarmlab/lab"
	"github.com/swarmlab/swarmlab/lab/internal/engine"
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
