// Package testenv starts real, throwaway servers for the apps' integration
// tests: containers from the lab's own images (scripts/bootstrap builds
// them), run with testcontainers-go. Ports are published on loopback at
// fixed numbers, so a server that is killed and started again answers where
// it did, with the data it had acknowledged.
package testenv

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/redis/go-redis/v9"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"

	"github.com/swarmlab/swarmlab/lab"
	"github.com/swarmlab/swarmlab/lab/images"
)

// Label marks every container this package starts, so that leftovers of a
// killed test run are swept by Sweep.
const Label = "io.swarmlab.testenv"

func init() {
	// Ryuk cannot be pulled offline; cleanup is the tests' own (and Sweep's).
	if os.Getenv("TESTCONTAINERS_RYUK_DISABLED") == "" {
		os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	}
	tclog.SetDefault(tclog.NewNoopLogger())
}

// FreePort returns a loopback port nothing listens on (at the moment).
func FreePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

var (
	hostOnce sync.Once
	host     *client.Client
	hostErr  error
)

// Engine returns the host engine and the local reference of one lab image
// ("redis", "postgres", ...). It fails the test when either is missing:
// integration tests exist to run against the real thing, never skip.
func Engine(tb testing.TB, image string) (*client.Client, string) {
	tb.Helper()
	hostOnce.Do(func() { host, hostErr = lab.Host(context.Background()) })
	if hostErr != nil {
		tb.Fatal(hostErr)
	}
	img, ok := images.Get(image)
	if !ok {
		tb.Fatalf("no lab image named %q", image)
	}
	ref, err := images.Resolve(context.Background(), host, img)
	if err != nil {
		tb.Fatal(err)
	}
	return host, ref
}

// Sweep removes the containers an earlier, killed run left behind. Call it
// from TestMain before m.Run.
func Sweep() {
	h, err := lab.Host(context.Background())
	if err != nil {
		return
	}
	defer h.Close()
	ctx := context.Background()
	cs, err := h.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", Label)})
	if err != nil {
		return
	}
	for _, c := range cs.Items {
		h.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	}
}

// Redis is a Redis that fsyncs every write to its append-only file before
// acknowledging it.
type Redis struct {
	Addr   string // host:port
	Socket string // Unix socket path, on the host
	id     string
	host   *client.Client
}

// StartRedis starts a Redis that is removed when the test ends.
func StartRedis(tb testing.TB) *Redis {
	return StartRedisAt(tb, "127.0.0.1", FreePort())
}

// StartRedisAt starts a Redis published on a given loopback address, so
// several can share one port as they do on different swarm nodes (any
// 127.x.y.z works).
func StartRedisAt(tb testing.TB, ip string, port int) *Redis {
	tb.Helper()
	h, ref := Engine(tb, "redis")
	// The socket directory is shared with the container; the server runs
	// as its own user there. Socket paths are limited to ~100 bytes.
	sockDir, err := os.MkdirTemp("", "testenv-redis-")
	if err != nil {
		tb.Fatal(err)
	}
	os.Chmod(sockDir, 0o777)
	r := &Redis{Addr: net.JoinHostPort(ip, strconv.Itoa(port)), Socket: filepath.Join(sockDir, "redis.sock"), host: h}
	c, err := testcontainers.Run(context.Background(), ref,
		testcontainers.WithLabels(map[string]string{Label: "redis"}),
		testcontainers.WithExposedPorts("6379/tcp"),
		testcontainers.WithCmd("redis-server", "--appendonly", "yes", "--appendfsync", "always", "--save", "",
			"--unixsocket", "/sock/redis.sock", "--unixsocketperm", "777"),
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			hc.PortBindings = network.PortMap{network.MustParsePort("6379/tcp"): {{HostIP: netip.MustParseAddr(ip), HostPort: strconv.Itoa(port)}}}
			hc.Binds = append(hc.Binds, sockDir+":/sock")
		}),
	)
	if c != nil {
		r.id = c.GetContainerID()
		tb.Cleanup(func() {
			h.ContainerRemove(context.Background(), r.id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
			os.RemoveAll(sockDir)
		})
	}
	if err != nil {
		tb.Fatalf("starting redis container: %v", err)
	}
	if err := r.waitReady(); err != nil {
		tb.Fatal(err)
	}
	return r
}

// Start starts a killed Redis again, on the same port and data: the
// append-only file brings back whatever was acknowledged before.
func (r *Redis) Start() error {
	if _, err := r.host.ContainerStart(context.Background(), r.id, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("starting redis %s again: %w", r.Addr, err)
	}
	return r.waitReady()
}

func (r *Redis) waitReady() error {
	c := r.Client()
	defer c.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := c.Ping(context.Background()).Err()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis on %s did not answer within 30s: %v", r.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill stops the server abruptly, as a crash would.
func (r *Redis) Kill() {
	ctx := context.Background()
	r.host.ContainerKill(ctx, r.id, client.ContainerKillOptions{Signal: "KILL"})
	w := r.host.ContainerWait(ctx, r.id, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	select {
	case <-w.Result:
	case <-w.Error:
	}
	os.Remove(r.Socket)
}

// Client returns a new client for the server.
func (r *Redis) Client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: r.Addr, DialTimeout: time.Second})
}
