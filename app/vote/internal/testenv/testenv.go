// Package testenv starts real, throwaway Redis and Postgres servers for the
// vote app's integration tests. Redis comes from the apps' shared
// app/internal/testenv; the Postgres server, with one database per test, is
// vote's own.
package testenv

import (
	"context"
	"fmt"
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
	"github.com/testcontainers/testcontainers-go"

	shared "github.com/swarmlab/swarmlab/app/internal/testenv"
	"github.com/swarmlab/swarmlab/app/vote/internal/store"
)

// Label marks every container this package starts.
const Label = shared.Label

// Redis is a Redis configured like a frontend's: every write fsynced to the
// append-only file before it is acknowledged.
type Redis = shared.Redis

// FreePort returns a loopback port nothing listens on (at the moment).
func FreePort() int { return shared.FreePort() }

// StartRedis starts a Redis that is removed when the test ends.
func StartRedis(tb testing.TB) *Redis { return shared.StartRedis(tb) }

// StartRedisAt starts a Redis published on a given loopback address, so
// several can share one port as they do on different swarm nodes (any
// 127.x.y.z works).
func StartRedisAt(tb testing.TB, ip string, port int) *Redis {
	return shared.StartRedisAt(tb, ip, port)
}

// Postgres is a throwaway Postgres server with password authentication.
type Postgres struct {
	Host, User, PasswordFile string
	Port                     int
	id                       string
	dir                      string
	host                     *client.Client
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
	shared.Sweep()
	code := m.Run()
	if sharedPG != nil {
		sharedPG.Stop()
	}
	os.Exit(code)
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
	h, ref := shared.Engine(tb, "postgres")
	dir, err := os.MkdirTemp("", "vote-pg-")
	if err != nil {
		return nil, err
	}
	p := &Postgres{Host: "127.0.0.1", User: "postgres", Port: FreePort(), dir: dir, host: h}
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
			logs := p.containerLog()
			p.Stop()
			return nil, fmt.Errorf("postgres on 127.0.0.1:%d did not accept a login within %s: %v\n--- container log ---\n%s", p.Port, timeout, err, logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// containerLog returns the last lines the server printed.
func (p *Postgres) containerLog() string {
	rc, err := p.host.ContainerLogs(context.Background(), p.id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: "20"})
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
	if p.id != "" && p.host != nil {
		p.host.ContainerRemove(context.Background(), p.id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	}
	os.RemoveAll(p.dir)
}
