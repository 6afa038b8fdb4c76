//go:build integration

package images

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tcexec "github.com/testcontainers/testcontainers-go/exec"
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
	if got := ask("SET", "k", "v"); got != "+OK" {
		t.Fatalf("SET answered %q", got)
	}

	// What the stacks exec in it: their health check, and the server runs as redis, with its
	// append-only files in /data.
	if out := execIn(t, ctx, c, "redis-cli", "ping"); out != "PONG" {
		t.Errorf("redis-cli ping: %q", out)
	}
	if out := execIn(t, ctx, c, "stat", "-c", "%U", "/proc/1"); out != "redis" {
		t.Errorf("the server runs as %q, want redis", out)
	}
	if out := execIn(t, ctx, c, "ls", "/data/appendonlydir"); !strings.Contains(out, ".incr.aof") {
		t.Errorf("/data/appendonlydir holds %q", out)
	}
}

// execIn runs cmd in c and returns its output, trimmed; it fails the test when cmd fails.
func execIn(t *testing.T, ctx context.Context, c *testcontainers.DockerContainer, cmd ...string) string {
	t.Helper()
	code, r, err := c.Exec(ctx, cmd, tcexec.Multiplexed())
	if err != nil {
		t.Fatalf("exec %v: %v", cmd, err)
	}
	out, _ := io.ReadAll(r)
	if code != 0 {
		t.Errorf("exec %v: exit %d: %s", cmd, code, out)
	}
	return strings.TrimSpace(string(out))
}

func httpGet(t *testing.T, client *http.Client, url, user, password string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}

// stopAndLogs stops c the way docker stop does (the image's stop signal) and returns its exit
// code and logs.
func stopAndLogs(t *testing.T, ctx context.Context, c *testcontainers.DockerContainer) (int, string) {
	t.Helper()
	timeout := 10 * time.Second
	start := time.Now()
	if err := c.Stop(ctx, &timeout); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("stopping took %s: the stop signal was not heeded", d)
	}
	st, err := c.Inspect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	logs, err := c.Logs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	b, _ := io.ReadAll(logs)
	return st.State.ExitCode, string(b)
}

// nginx the way the stacks and the official image's users run it: templates rendered with
// envsubst, conf.d files, /docker-entrypoint.d scripts, workers as nginx, logs on the container's
// output, graceful stop on SIGQUIT.
func TestIntegrationNginx(t *testing.T) {
	refs := ensured(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	c := run(t, ctx, refs["nginx"],
		testcontainers.WithEnv(map[string]string{"GREETING": "templated", "ALT_PORT": "8081"}),
		testcontainers.WithFiles(
			testcontainers.ContainerFile{
				Reader:            strings.NewReader("server {\n  listen ${ALT_PORT};\n  location / { default_type text/plain; return 200 \"${GREETING} $request_uri\\n\"; }\n}\n"),
				ContainerFilePath: "/etc/nginx/templates/alt.conf.template",
				FileMode:          0o644,
			},
			testcontainers.ContainerFile{
				Reader:            strings.NewReader("server {\n  listen 8082;\n  location / { default_type text/plain; return 200 \"conf.d\\n\"; }\n}\n"),
				ContainerFilePath: "/etc/nginx/conf.d/extra.conf",
				FileMode:          0o644,
			},
			testcontainers.ContainerFile{
				Reader:            strings.NewReader("#!/bin/sh\necho \"entrypoint.d ran as $(id -un)\"\n"),
				ContainerFilePath: "/docker-entrypoint.d/10-hello.sh",
				FileMode:          0o755,
			},
		),
		testcontainers.WithExposedPorts("80/tcp", "8081/tcp", "8082/tcp"),
		testcontainers.WithWaitStrategy(wait.ForAll(
			wait.ForListeningPort("80/tcp"), wait.ForListeningPort("8081/tcp"), wait.ForListeningPort("8082/tcp"),
		).WithDeadline(60*time.Second)),
	)
	url := func(port string) string {
		addr, err := c.PortEndpoint(ctx, port, "http")
		if err != nil {
			t.Fatal(err)
		}
		return addr
	}
	if code, body := httpGet(t, nil, url("80/tcp")+"/", "", ""); code != 200 || !strings.Contains(body, "Welcome to nginx!") {
		t.Errorf("GET / on 80: %d %q", code, body)
	}
	if code, body := httpGet(t, nil, url("8081/tcp")+"/x", "", ""); code != 200 || body != "templated /x\n" {
		t.Errorf("GET /x on the templated server: %d %q", code, body)
	}
	if code, body := httpGet(t, nil, url("8082/tcp")+"/", "", ""); code != 200 || body != "conf.d\n" {
		t.Errorf("GET / on the conf.d server: %d %q", code, body)
	}
	if code, _ := httpGet(t, nil, url("80/tcp")+"/nope", "", ""); code != 404 {
		t.Errorf("GET /nope: %d", code)
	}
	if out := execIn(t, ctx, c, "sh", "-c", "stat -c %U /proc/[0-9]*/exe 2>/dev/null | sort -u | tr '\\n' ' '"); !strings.Contains(out, "nginx") {
		t.Errorf("process owners %q: no worker runs as nginx", out)
	}

	code, logs := stopAndLogs(t, ctx, c)
	for _, want := range []string{
		"entrypoint.d ran as root",
		"rendering /etc/nginx/templates/alt.conf.template to /etc/nginx/conf.d/alt.conf",
		`"GET /x HTTP/1.1" 200`,                      // access log on stdout
		`open() "/usr/share/nginx/html/nope" failed`, // error log on stderr
		"signal 3 (SIGQUIT) received",
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
	if code != 0 {
		t.Errorf("exit code %d after docker stop", code)
	}
}

// HAProxy the way app/vote runs its edge: that stack's own haproxy.cfg (TLS, stats with a
// password from the environment, DNS service discovery on Docker's resolver), started through
// /bin/sh with the password read by cat from a secret file.
func TestIntegrationHaproxy(t *testing.T) {
	refs := ensured(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	cfg, err := os.ReadFile("../../app/vote/edge/haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	const password = "stats-s3cret"
	c := run(t, ctx, refs["haproxy"],
		testcontainers.WithEntrypoint("/bin/sh", "-c", "STATS_PASSWORD=$(cat /run/secrets/stats_password) exec docker-entrypoint.sh haproxy -f /usr/local/etc/haproxy/haproxy.cfg"),
		testcontainers.WithFiles(
			testcontainers.ContainerFile{Reader: bytes.NewReader(cfg), ContainerFilePath: "/usr/local/etc/haproxy/haproxy.cfg", FileMode: 0o644},
			testcontainers.ContainerFile{Reader: strings.NewReader(password + "\n"), ContainerFilePath: "/run/secrets/stats_password", FileMode: 0o444},
			testcontainers.ContainerFile{Reader: bytes.NewReader(selfSignedPEM(t)), ContainerFilePath: "/run/secrets/edge_pem", FileMode: 0o444},
		),
		testcontainers.WithExposedPorts("80/tcp", "443/tcp", "8404/tcp"),
		testcontainers.WithWaitStrategy(wait.ForAll(
			wait.ForListeningPort("80/tcp"), wait.ForListeningPort("443/tcp"), wait.ForListeningPort("8404/tcp"),
		).WithDeadline(60*time.Second)),
	)
	endpoint := func(port, proto string) string {
		addr, err := c.PortEndpoint(ctx, port, proto)
		if err != nil {
			t.Fatal(err)
		}
		return addr
	}
	if code, body := httpGet(t, nil, endpoint("80/tcp", "http")+"/edge/ping", "", ""); code != 200 || body != "edge\n" {
		t.Errorf("GET /edge/ping: %d %q", code, body)
	}
	insecure := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	if code, body := httpGet(t, insecure, endpoint("443/tcp", "https")+"/edge/ping", "", ""); code != 200 || body != "edge\n" {
		t.Errorf("GET /edge/ping over TLS: %d %q", code, body)
	}
	// no vote task: the request waits for a server, then fails (not a crash)
	if code, _ := httpGet(t, &http.Client{Timeout: 30 * time.Second}, endpoint("80/tcp", "http")+"/", "", ""); code != 503 {
		t.Errorf("GET / with no vote task: %d, want 503", code)
	}
	stats := endpoint("8404/tcp", "http") + "/;csv"
	if code, _ := httpGet(t, nil, stats, "admin", "wrong"); code != 401 {
		t.Errorf("stats with a wrong password: %d", code)
	}
	if code, body := httpGet(t, nil, stats, "admin", password); code != 200 || !strings.Contains(body, "vote_overlay,vote1,") {
		t.Errorf("stats: %d %q", code, body)
	}
	if out := execIn(t, ctx, c, "stat", "-c", "%U", "/proc/1"); out != "haproxy" {
		t.Errorf("haproxy runs as %q", out)
	}
	if code, logs := stopAndLogs(t, ctx, c); code != 0 {
		t.Errorf("exit code %d after docker stop:\n%s", code, logs)
	}
}

// selfSignedPEM returns a certificate and its key in one PEM file, as HAProxy's crt wants.
func selfSignedPEM(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "edge"},
		DNSNames:     []string{"localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk})...)
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
