//go:build integration

package images

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

func TestMain(m *testing.M) {
	// Ryuk (testcontainers' reaper) is an image that cannot be pulled here; the tests remove
	// their containers themselves.
	os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	// Inside a container (/.dockerenv) testcontainers looks for published ports on the default
	// gateway, which is wrong when the engine runs in this very container, as on the lab's
	// machines: then they are on localhost.
	if _, set := os.LookupEnv("TESTCONTAINERS_HOST_OVERRIDE"); !set && localEngine() {
		os.Setenv("TESTCONTAINERS_HOST_OVERRIDE", "localhost")
	}
	os.Exit(m.Run())
}

// localEngine tells whether the engine behind the default socket is a dockerd process that this
// process can see (same PID namespace), i.e. whether its published ports are on localhost.
func localEngine() bool {
	if h := os.Getenv("DOCKER_HOST"); h != "" && !strings.HasPrefix(h, "unix://") {
		return false
	}
	for _, pidfile := range []string{"/var/run/docker.pid", "/run/docker.pid"} {
		pid, err := os.ReadFile(pidfile)
		if err != nil {
			continue
		}
		comm, err := os.ReadFile("/proc/" + strings.TrimSpace(string(pid)) + "/comm")
		if err == nil && strings.TrimSpace(string(comm)) == "dockerd" {
			return true
		}
	}
	return false
}

// engine returns a client of the engine named by the environment, or skips the test when no
// engine answers.
func engine(t *testing.T) *client.Client {
	t.Helper()
	cli, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatalf("docker client: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
		t.Skipf("SKIP: no Docker engine answers at %s (DOCKER_HOST=%q): %v -- run scripts/bootstrap to start one",
			cli.DaemonHost(), os.Getenv("DOCKER_HOST"), err)
	}
	return cli
}

// ensured runs Ensure once for every test of the file.
var ensuredRefs map[string]string

func ensured(t *testing.T) map[string]string {
	t.Helper()
	cli := engine(t)
	if ensuredRefs != nil {
		return ensuredRefs
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	refs, err := Ensure(ctx, cli, t.Logf)
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	ensuredRefs = refs
	return refs
}

func TestIntegrationEnsure(t *testing.T) {
	cli := engine(t)
	refs := ensured(t)
	ctx := context.Background()
	for _, img := range All() {
		ref, ok := refs[img.Name]
		if !ok {
			t.Errorf("%s: no ref", img.Name)
			continue
		}
		if ref != img.Ref() && ref != img.PullRef() {
			t.Errorf("%s: ref %s is neither %s nor %s", img.Name, ref, img.Ref(), img.PullRef())
		}
		res, err := cli.ImageInspect(ctx, ref)
		if err != nil {
			t.Errorf("%s: inspect %s: %v", img.Name, ref, err)
			continue
		}
		t.Logf("%-8s %s %s (%d MB)", img.Name, ref, res.ID[:19], res.Size/1e6)
	}
	missing, err := Missing(ctx, cli)
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range missing {
		if refs[img.Name] == img.Ref() {
			t.Errorf("%s built but reported missing", img.Name)
		}
	}

	// A second Ensure has nothing to do, and is quick.
	start := time.Now()
	again, err := Ensure(ctx, cli, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	for name, ref := range refs {
		// (an official image, if one was pulled, is tried again and may be built this time
		// if the registry went away; the lab's own images must not move)
		if strings.HasPrefix(ref, RepoPrefix) && again[name] != ref {
			t.Errorf("%s: second Ensure gave %s, first %s", name, again[name], ref)
		}
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("second Ensure took %s", d)
	}
}

func run(t *testing.T, ctx context.Context, img string, opts ...testcontainers.ContainerCustomizer) *testcontainers.DockerContainer {
	t.Helper()
	c, err := testcontainers.Run(ctx, img, opts...)
	testcontainers.CleanupContainer(t, c)
	if err != nil {
		if c != nil {
			if logs, lerr := c.Logs(ctx); lerr == nil {
				var b strings.Builder
				sc := bufio.NewScanner(logs)
				for sc.Scan() {
					b.WriteString(sc.Text() + "\n")
				}
				t.Logf("container logs:\n%s", b.String())
			}
		}
		t.Fatalf("run %s: %v", img, err)
	}
	return c
}

func TestIntegrationRedis(t *testing.T) {
	refs := ensured(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Arguments appended the official way: the entry point prepends redis-server.
	c := run(t, ctx, refs["redis"],
		testcontainers.WithCmd("--appendonly", "yes"),
		testcontainers.WithExposedPorts("6379/tcp"),
		testcontainers.WithWaitStrategy(wait.ForListeningPort("6379/tcp").WithStartupTimeout(60*time.Second)),
	)
	addr, err := c.PortEndpoint(ctx, "6379/tcp", "")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	rd := bufio.NewReader(conn)
	ask := func(args ...string) string {
		t.Helper()
		fmt.Fprintf(conn, "*%d\r\n", len(args))
		for _, a := range args {
			fmt.Fprintf(conn, "$%d\r\n%s\r\n", len(a), a)
		}
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		return strings.TrimSpace(line)
	}
	if got := ask("PING"); got != "+PONG" {
		t.Fatalf("PING answered %q", got)
	}
	// The reply to CONFIG GET is an array: *2, $10, appendonly, $3, yes.
	if got := ask("CONFIG", "GET", "appendonly"); got != "*2" {
		t.Fatalf("CONFIG GET answered %q", got)
	}
	var vals []string
	for i := 0; i < 4; i++ {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		vals = append(vals, strings.TrimSpace(line))
	}
	if vals[3] != "yes" {
		t.Errorf("appendonly = %q: the arguments did not reach redis-server", vals)
	}
}

func TestIntegrationPostgres(t *testing.T) {
	refs := ensured(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	const password = "s3cret, with spaces"
	c := run(t, ctx, refs["postgres"],
		testcontainers.WithEnv(map[string]string{
			"POSTGRES_PASSWORD_FILE": "/tmp/pg-password",
			"POSTGRES_USER":          "lab",
			"POSTGRES_DB":            "labdb",
		}),
		testcontainers.WithFiles(testcontainers.ContainerFile{
			Reader:            strings.NewReader(password + "\n"),
			ContainerFilePath: "/tmp/pg-password",
			FileMode:          0o644,
		}),
		testcontainers.WithExposedPorts("5432/tcp"),
		// The first start runs initdb and a temporary server; the real server logs "ready" last.
		testcontainers.WithWaitStrategy(wait.ForAll(
			wait.ForLog("database system is ready to accept connections").WithOccurrence(2),
			wait.ForListeningPort("5432/tcp"),
		).WithDeadline(90*time.Second)),
	)
	addr, err := c.PortEndpoint(ctx, "5432/tcp", "")
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(addr)

	connect := func(pw string) (*pgx.Conn, error) {
		cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%s user=lab dbname=labdb sslmode=disable connect_timeout=10", host, port))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Password = pw
		return pgx.ConnectConfig(ctx, cfg)
	}
	conn, err := connect(password)
	if err != nil {
		t.Fatalf("login with the password from POSTGRES_PASSWORD_FILE: %v", err)
	}
	var db, user string
	if err := conn.QueryRow(ctx, "select current_database(), current_user").Scan(&db, &user); err != nil {
		t.Fatal(err)
	}
	if db != "labdb" || user != "lab" {
		t.Errorf("connected to %s as %s", db, user)
	}
	if _, err := conn.Exec(ctx, "create table kept (v text); insert into kept values ('still here')"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)

	if c, err := connect("wrong"); err == nil {
		c.Close(ctx)
		t.Error("login with a wrong password worked")
	}

	// Restart: the data stays, no second initdb.
	timeout := 10 * time.Second
	if err := c.Stop(ctx, &timeout); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	addr, err = c.PortEndpoint(ctx, "5432/tcp", "")
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ = net.SplitHostPort(addr)
	var v string
	deadline := time.Now().Add(60 * time.Second)
	for {
		conn, err = connect(password)
		if err == nil {
			err = conn.QueryRow(ctx, "select v from kept").Scan(&v)
			conn.Close(ctx)
		}
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err != nil || v != "still here" {
		t.Fatalf("after a restart: %q, %v", v, err)
	}
}
