// Package testenv starts real, throwaway Redis and Postgres servers for
// integration tests: containers from the lab's own redis and postgres images
// (scripts/bootstrap builds them), run with testcontainers-go. Ports are
// published on loopback at fixed numbers, so a server that is killed and
// started again answers where it did, with the data it had acknowledged.
package testenv

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/redis/go-redis/v9"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"

	"github.com/swarmlab/swarmlab/app/vote/internal/store"
	"github.com/swarmlab/swarmlab/lab"
	"github.com/swarmlab/swarmlab/lab/images"
)

// Label marks every container this package starts, so that leftovers of a
// killed test run are swept by Main.
const Label = "io.swarmlab.testenv"

func init() {
	// Ryuk cannot be pulled offline; cleanup is the tests' own (and Main's).
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

// engine is the host engine, and the local reference of one lab image.
func engine(tb testing.TB, name string) (*client.Client, string) {
	tb.Helper()
	hostOnce.Do(func() { host, hostErr = lab.Host(context.Background()) })
	if hostErr != nil {
		// Integration tests exist to run against the real thing: fail, never skip.
		tb.Fatal(hostErr)
	}
	img, _ := images.Get(name)
	ref, err := images.Resolve(context.Background(), host, img)
	if err != nil {
		tb.Fatal(err)
	}
	return host, ref
}

// Redis is a Redis configured like a frontend's: every write fsynced to the
// append-only file before it is acknowledged.
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
	h, ref := engine(tb, "redis")
	// The socket directory is shared with the container; the server runs
	// as its own user there. Socket paths are limited to ~100 bytes.
	sockDir, err := os.MkdirTemp("", "vote-redis-")
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

// Postgres is a throwaway Postgres server with password authentication.
type Postgres struct {
	Host, User, PasswordFile string
	Port                     int
	id                       string
	dir                      string
	mu                       sync.Mutex
	dbs                      int
}

var (
	sharedPG   *Postgres
	sharedErr  error
	sharedOnce sync.Once
)

// Main sweeps containers left by an earlier, killed run, runs the tests,
// and then removes the shared Postgres, if one was started. Call it from
// TestMain.
func Main(m *testing.M) {
	sweep()
	code := m.Run()
	if sharedPG != nil {
		sharedPG.Stop()
	}
	os.Exit(code)
}

func sweep() {
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

// SharedPostgres starts one server per test binary and gives each caller a
// fresh database in it. Use with Main.
func SharedPostgres(tb testing.TB) store.Config {
	tb.Helper()
	sharedOnce.Do(func() { sharedPG, sharedErr = startPostgres(tb) })
	if sharedErr != nil {
		tb.Fatal(sharedErr)
	}
	return sharedPG.NewDatabase(tb)
}

const testPassword = "vote-test-secret"

func startPostgres(tb testing.TB) (*Postgres, error) {
	_, ref := engine(tb, "postgres")
	dir, err := os.MkdirTemp("", "vote-pg-")
	if err != nil {
		return nil, err
	}
	p := &Postgres{Host: "127.0.0.1", User: "postgres", Port: FreePort(), dir: dir}
	p.PasswordFile = filepath.Join(dir, "password")
	if err := os.WriteFile(p.PasswordFile, []byte(testPassword+"\n"), 0o600); err != nil {
		return nil, err
	}
	c, err := testcontainers.Run(context.Background(), ref,
		testcontainers.WithLabels(map[string]string{Label: "postgres"}),
		testcontainers.WithExposedPorts("5432/tcp"),
		testcontainers.WithEnv(map[string]string{"POSTGRES_PASSWORD": testPassword}),
		// Throwaway data: durability is Redis's job in these tests.
		testcontainers.WithCmd("postgres", "-c", "fsync=off", "-c", "synchronous_commit=off"),
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			hc.PortBindings = network.PortMap{network.MustParsePort("5432/tcp"): {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: strconv.Itoa(p.Port)}}}
		}),
	)
	if c != nil {
		p.id = c.GetContainerID()
	}
	if err != nil {
		p.Stop()
		return nil, fmt.Errorf("starting postgres container: %w", err)
	}
	cfg := p.config("postgres")
	// initdb runs first; on a loaded machine with slow fsyncs it can take
	// a while.
	const timeout = 2 * time.Minute
	deadline := time.Now().Add(timeout)
	for {
		conn, err := store.Connect(context.Background(), cfg)
		if err == nil {
			conn.Close(context.Background())
			return p, nil
		}
		if time.Now().After(deadline) {
			logs := containerLog(p.id)
			p.Stop()
			return nil, fmt.Errorf("postgres on 127.0.0.1:%d did not accept a login within %s: %v\n--- container log ---\n%s", p.Port, timeout, err, logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// containerLog returns the last lines a container printed.
func containerLog(id string) string {
	rc, err := host.ContainerLogs(context.Background(), id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: "20"})
	if err != nil {
		return err.Error()
	}
	defer rc.Close()
	var b strings.Builder
	stdcopy.StdCopy(&b, &b, rc)
	return b.String()
}

func (p *Postgres) config(db string) store.Config {
	return store.Config{Host: p.Host, Port: p.Port, User: p.User, Database: db, SSLMode: "disable", PasswordFile: p.PasswordFile}
}

// NewDatabase creates an empty database for one test.
func (p *Postgres) NewDatabase(tb testing.TB) store.Config {
	tb.Helper()
	p.mu.Lock()
	p.dbs++
	name := fmt.Sprintf("vote_%d", p.dbs)
	p.mu.Unlock()
	ctx := context.Background()
	c, err := store.Connect(ctx, p.config("postgres"))
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		tb.Fatal(err)
	}
	return p.config(name)
}

// Stop removes the server and its files.
func (p *Postgres) Stop() {
	if p.id != "" && host != nil {
		host.ContainerRemove(context.Background(), p.id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	}
	os.RemoveAll(p.dir)
}
