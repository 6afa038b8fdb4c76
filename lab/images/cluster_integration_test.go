//go:build integration

package images

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	labengine "github.com/swarmlab/swarmlab/lab/internal/engine"
	"github.com/swarmlab/swarmlab/lab/wait"
)

// The clusters of the standard images, proven with plain containers on a bridge network of the
// host's engine (not a swarm lab): a Galera cluster of two mariadb members and garbd, and a Redis
// primary, replica and three sentinels. Container names are the members' DNS names there, as
// service names are in a swarm.

// bridge is a user-defined bridge network and the containers the test runs on it, removed
// (with their anonymous volumes) when the test ends.
type bridge struct {
	t      *testing.T
	cli    *client.Client
	name   string
	prefix string
	ids    map[string]string
}

func newBridge(t *testing.T, cli *client.Client) *bridge {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	id := hex.EncodeToString(b)
	br := &bridge{t: t, cli: cli, name: "swarmlab-imgtest-" + id, prefix: "imgtest-" + id + "-", ids: map[string]string{}}
	ctx := context.Background()
	if _, err := cli.NetworkCreate(ctx, br.name, client.NetworkCreateOptions{Driver: "bridge"}); err != nil {
		t.Fatalf("network %s: %v", br.name, err)
	}
	t.Cleanup(func() {
		for name, id := range br.ids {
			if t.Failed() {
				t.Logf("--- logs of %s:\n%s", name, br.logs(name))
			}
			cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		}
		cli.NetworkRemove(ctx, br.name, client.NetworkRemoveOptions{})
	})
	return br
}

// run creates and starts the container name (its DNS name on the network), of image, with env,
// binds and cmd.
func (b *bridge) run(name, image string, env, binds []string, cmd ...string) {
	b.t.Helper()
	ctx := context.Background()
	created, err := b.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:       b.prefix + name,
		Config:     &container.Config{Image: image, Hostname: name, Env: env, Cmd: cmd},
		HostConfig: &container.HostConfig{Binds: binds},
		NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
			b.name: {Aliases: []string{name}},
		}},
	})
	if err != nil {
		b.t.Fatalf("creating %s: %v", name, err)
	}
	b.ids[name] = created.ID
	b.start(name)
}

func (b *bridge) start(name string) {
	b.t.Helper()
	if _, err := b.cli.ContainerStart(context.Background(), b.ids[name], client.ContainerStartOptions{}); err != nil {
		b.t.Fatalf("starting %s: %v", name, err)
	}
}

func (b *bridge) kill(name string) {
	b.t.Helper()
	if _, err := b.cli.ContainerKill(context.Background(), b.ids[name], client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		b.t.Fatalf("killing %s: %v", name, err)
	}
}

func (b *bridge) stop(name string) {
	b.t.Helper()
	timeout := 60
	if _, err := b.cli.ContainerStop(context.Background(), b.ids[name], client.ContainerStopOptions{Timeout: &timeout}); err != nil {
		b.t.Fatalf("stopping %s: %v", name, err)
	}
}

// all does f for each name at once, and returns when all are done.
func (b *bridge) all(f func(string), names ...string) {
	var wg sync.WaitGroup
	for _, n := range names {
		wg.Add(1)
		go func() { defer wg.Done(); f(n) }()
	}
	wg.Wait()
}

func (b *bridge) ip(name string) string {
	b.t.Helper()
	ins, err := b.cli.ContainerInspect(context.Background(), b.ids[name], client.ContainerInspectOptions{})
	if err != nil {
		b.t.Fatal(err)
	}
	return ins.Container.NetworkSettings.Networks[b.name].IPAddress.String()
}

func (b *bridge) exec(ctx context.Context, name string, cmd ...string) (labengine.ExecResult, error) {
	return labengine.Exec(ctx, b.cli, b.ids[name], cmd...)
}

func (b *bridge) logs(name string) string {
	r, err := b.cli.ContainerLogs(context.Background(), b.ids[name], client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return err.Error()
	}
	defer r.Close()
	var out strings.Builder
	stdcopy.StdCopy(&out, &out, r)
	return out.String()
}

// exited is an error when the container name no longer runs, with the end of its log.
func (b *bridge) exited(ctx context.Context, name string) error {
	ins, err := b.cli.ContainerInspect(ctx, b.ids[name], client.ContainerInspectOptions{})
	if err == nil && !ins.Container.State.Running {
		return fmt.Errorf("%s exited with code %d:\n%s", name, ins.Container.State.ExitCode, lastLines(b.logs(name), 30))
	}
	return nil
}

// clusterEngine is the engine of the cluster tests: the member's addresses on the bridge must be
// reachable from here, which they are on a local engine only.
func clusterEngine(t *testing.T) *client.Client {
	cli := engine(t)
	if !localEngine() {
		t.Skip("SKIP: the engine is not local: its bridge addresses are not reachable from here")
	}
	return cli
}

// Timeouts, from what the members are configured to do (swarmlab-galera's provider options: a
// member is suspected after 3 s, evicted after 6 s; garbd waits for a primary component).
const (
	galeraStartTimeout = 3 * time.Minute // a member's first start: data directory, SST
	galeraSyncTimeout  = 2 * time.Minute // a member's start again: recovery, IST
	galeraWriteTimeout = 20 * time.Second
)

func TestIntegrationGalera(t *testing.T) {
	cli := clusterEngine(t)
	refs := ensured(t)
	image := refs["mariadb"]
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	b := newBridge(t, cli)

	secret := filepath.Join(t.TempDir(), "db_password")
	if err := os.WriteFile(secret, []byte("s3cret'pw\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := func(name string) []string {
		return []string{"GALERA_PEERS=db1,db2,garbd", "GALERA_SIZE=2", "GALERA_BOOTSTRAP_NODE=db1", "GALERA_CLUSTER_NAME=crud",
			"GALERA_NODE_NAME=" + name, "MARIADB_DATABASE=crud", "MARIADB_USER=crud", "MARIADB_PASSWORD_FILE=/run/secrets/db_password"}
	}
	binds := []string{secret + ":/run/secrets/db_password:ro"}
	dbs := []string{"db1", "db2"}
	start := time.Now()
	b.all(func(n string) {
		if n == "garbd" {
			b.run(n, image, env(n), nil, "garbd")
		} else {
			b.run(n, image, env(n), binds)
		}
	}, "db1", "db2", "garbd")

	// A new cluster: db1 (designated) bootstraps, db2 joins by SST, garbd once one runs.
	healthy := func(timeout time.Duration, names ...string) time.Duration {
		t.Helper()
		from := time.Now()
		b.all(func(n string) {
			if _, err := wait.For(ctx, n+" to be Synced", timeout, 250*time.Millisecond, func(ctx context.Context) wait.Result {
				if err := b.exited(ctx, n); err != nil {
					return wait.Fail(err)
				}
				r, err := b.exec(ctx, n, "swarmlab-galera-health")
				if err != nil || r.ExitCode != 0 {
					return wait.Continue("%v %s", err, strings.TrimSpace(r.Stdout+r.Stderr))
				}
				return wait.Done(strings.TrimSpace(r.Stdout))
			}); err != nil {
				t.Error(err)
			}
		}, names...)
		if t.Failed() {
			t.FailNow()
		}
		return time.Since(from)
	}
	healthy(galeraStartTimeout, dbs...)
	t.Logf("new cluster: db1 and db2 Synced %s after their start", time.Since(start).Round(100*time.Millisecond))

	// connect (again: a container started again has another address) to the members
	conns := map[string]*sql.DB{}
	connect := func(names ...string) {
		for _, n := range names {
			if conns[n] != nil {
				conns[n].Close()
			}
			db, err := sql.Open("mysql", "crud:s3cret'pw@tcp("+b.ip(n)+":3306)/crud?timeout=2s&readTimeout=20s&writeTimeout=20s")
			if err != nil {
				t.Fatal(err)
			}
			db.SetMaxOpenConns(2)
			conns[n] = db
		}
	}
	defer func() {
		for _, db := range conns {
			db.Close()
		}
	}()
	connect(dbs...)
	size := func(n string, want int) {
		t.Helper()
		if _, err := wait.For(ctx, fmt.Sprintf("cluster size %d on %s", want, n), 90*time.Second, 500*time.Millisecond, func(ctx context.Context) wait.Result {
			var name, v string
			if err := conns[n].QueryRowContext(ctx, "SHOW STATUS LIKE 'wsrep_cluster_size'").Scan(&name, &v); err != nil {
				return wait.Continue("%v", err)
			}
			if v != strconv.Itoa(want) {
				return wait.Continue("wsrep_cluster_size=%s", v)
			}
			return wait.Done("wsrep_cluster_size=" + v)
		}); err != nil {
			t.Fatal(err)
		}
	}
	size("db1", 3)
	size("db2", 3)
	if _, err := conns["db2"].ExecContext(ctx, "CREATE TABLE IF NOT EXISTS t (id BIGINT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(64))"); err != nil {
		t.Fatal(err)
	}
	var acked []int64
	acked = append(acked, write(t, ctx, conns["db2"], "on db2")...)

	// Kill db2: db1 and garbd keep the quorum (2 of 3), and db1 goes on writing.
	w := startWriter(ctx, conns["db1"])
	time.Sleep(time.Second)
	killed := time.Now()
	b.kill("db2")
	size("db1", 2) // db2 evicted
	time.Sleep(2 * time.Second)
	ops := w.stop()
	stall, back := longestStall(ops, killed)
	if back < 0 {
		t.Fatalf("no write on db1 succeeded after db2 was killed (%d writes)", len(ops))
	}
	t.Logf("kill of db2: db1's writes stalled %s, and flowed again %s after the kill (%d writes acknowledged)",
		stall.Round(10*time.Millisecond), back.Round(10*time.Millisecond), len(w.ids))
	acked = append(acked, w.ids...)
	acked = append(acked, write(t, ctx, conns["db1"], "while db2 is down")...)

	// db2 starts again: it rejoins by IST (the write sets it missed, from db1's gcache).
	restarted := time.Now()
	b.start("db2")
	healthy(galeraSyncTimeout, "db2")
	connect("db2")
	logs := lastStart(b.logs("db2"))
	if !strings.Contains(logs, "join: ") || !strings.Contains(logs, "IST received") {
		t.Errorf("db2 did not rejoin by IST; its log:\n%s", lastLines(logs, 40))
	}
	t.Logf("db2 started again: Synced %s after its start (IST)", time.Since(restarted).Round(100*time.Millisecond))
	size("db2", 3)
	present(t, ctx, conns["db2"], "db2 after its rejoin", acked)

	// Every member stops (at once: none is surely the last to leave), then all start: the
	// entry points agree on the one to bootstrap from and the others join.
	b.all(b.stop, "db1", "db2", "garbd")
	up := time.Now()
	b.all(b.start, "db1", "db2", "garbd")
	healthy(galeraSyncTimeout, dbs...)
	t.Logf("all stopped, all started: both Synced %s after the start", time.Since(up).Round(100*time.Millisecond))
	connect(dbs...)
	for _, n := range dbs {
		t.Logf("  %s: %s", n, decisions(b.logs(n)))
	}
	size("db1", 3)
	present(t, ctx, conns["db1"], "db1 after all stopped", acked)
	present(t, ctx, conns["db2"], "db2 after all stopped", acked)

	// Every member is killed: grastate.dat says seqno -1, the positions come from InnoDB.
	acked = append(acked, write(t, ctx, conns["db1"], "before the kill of all")...)
	b.all(b.kill, "db1", "db2", "garbd")
	up = time.Now()
	b.all(b.start, "db1", "db2", "garbd")
	healthy(galeraSyncTimeout, dbs...)
	t.Logf("all killed, all started: both Synced %s after the start", time.Since(up).Round(100*time.Millisecond))
	connect(dbs...)
	for _, n := range dbs {
		logs := lastStart(b.logs(n))
		t.Logf("  %s: %s", n, decisions(logs))
		if !strings.Contains(logs, "recovered from InnoDB") {
			t.Errorf("%s did not recover its position from InnoDB", n)
		}
	}
	size("db1", 3)
	present(t, ctx, conns["db1"], "db1 after all were killed", acked)
	present(t, ctx, conns["db2"], "db2 after all were killed", acked)
}

// lastStart is the log of a member's last start.
func lastStart(logs string) string {
	if i := strings.LastIndex(logs, "swarmlab-galera: member "); i >= 0 {
		if j := strings.LastIndex(logs[:i], "swarmlab-galera: member "); j >= 0 && strings.Contains(logs[j:i], "reading its position") {
			i = j
		}
		return logs[i:]
	}
	return logs
}

// decisions are the decisions of a member's last start.
func decisions(logs string) string {
	logs = lastStart(logs)
	var out []string
	for _, l := range strings.Split(logs, "\n") {
		for _, a := range []string{"join: ", "bootstrap: ", "recovered from InnoDB"} {
			if strings.Contains(l, "swarmlab-galera: ") && strings.Contains(l, a) {
				out = append(out, strings.TrimPrefix(l[strings.Index(l, "swarmlab-galera: "):], "swarmlab-galera: "))
			}
		}
	}
	return strings.Join(out, " / ")
}

// write inserts ten rows and returns their ids; a failure fails the test. A deadlock is tried
// again: Galera aborts a transaction that conflicts with one ordered before it (a write set of
// another member, or DDL such as the accounts' statements), and the client must retry.
func write(t *testing.T, ctx context.Context, db *sql.DB, what string) []int64 {
	t.Helper()
	var ids []int64
	for i := 0; i < 10; i++ {
		var res sql.Result
		var err error
		for try := 0; try < 3; try++ {
			octx, cancel := context.WithTimeout(ctx, galeraWriteTimeout)
			res, err = db.ExecContext(octx, "INSERT INTO t (v) VALUES (?)", what)
			cancel()
			if err == nil || !strings.Contains(err.Error(), "Error 1213") {
				break
			}
		}
		if err != nil {
			t.Fatalf("insert %s: %v", what, err)
		}
		id, _ := res.LastInsertId()
		ids = append(ids, id)
	}
	return ids
}

// present checks that every acknowledged row is on db, one by one (a count could hide a swap).
func present(t *testing.T, ctx context.Context, db *sql.DB, where string, ids []int64) {
	t.Helper()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// reads wait until this member applied what the cluster committed before them
	if _, err := conn.ExecContext(ctx, "SET SESSION wsrep_sync_wait = 1"); err != nil {
		t.Fatal(err)
	}
	have := map[int64]bool{}
	rows, err := conn.QueryContext(ctx, "SELECT id FROM t")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		rows.Scan(&id)
		have[id] = true
	}
	rows.Close()
	var lost []int64
	for _, id := range ids {
		if !have[id] {
			lost = append(lost, id)
		}
	}
	if len(lost) > 0 {
		t.Errorf("%s: %d of %d acknowledged rows are lost: %v", where, len(lost), len(ids), lost)
	}
}

type op struct{ start, end time.Time }

// writer inserts rows one after another on a database until stopped: what it was acknowledged
// (ids), and when each successful insert began and ended.
type writer struct {
	quit chan struct{}
	done chan struct{}
	ops  []op
	ids  []int64
}

func startWriter(ctx context.Context, db *sql.DB) *writer {
	w := &writer{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.quit:
				return
			default:
			}
			s := time.Now()
			octx, ocancel := context.WithTimeout(ctx, galeraWriteTimeout)
			res, err := db.ExecContext(octx, "INSERT INTO t (v) VALUES ('writer')")
			ocancel()
			if err != nil {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			id, _ := res.LastInsertId()
			w.ids = append(w.ids, id)
			w.ops = append(w.ops, op{s, time.Now()})
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return w
}

// stop stops the writer after the write it is doing (which may be waiting for the cluster).
func (w *writer) stop() []op {
	close(w.quit)
	<-w.done
	return w.ops
}

// longestStall is the longest time between two successive acknowledgements of writes (ops, in
// order) ending after t, and when, after t, writes flowed again after it (-1: no write ended
// after t).
func longestStall(ops []op, t time.Time) (stall, back time.Duration) {
	back = -1
	prev := t
	for _, o := range ops {
		if o.end.Before(t) {
			prev = o.end
			continue
		}
		if d := o.end.Sub(prev); d > stall || back < 0 {
			stall, back = d, o.end.Sub(t)
		}
		prev = o.end
	}
	return stall, back
}

// Redis Sentinel timings: what the sentinels are configured to do (down after 2 s, quorum 2 of
// 3), with room for the election.
const (
	sentinelReadyTimeout    = time.Minute
	sentinelFailoverTimeout = 30 * time.Second
)

func TestIntegrationRedisSentinel(t *testing.T) {
	cli := engine(t)
	refs := ensured(t)
	image := refs["redis"]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	b := newBridge(t, cli)

	const sentinels = "s1,s2,s3"
	env := func(name string) []string {
		return []string{"REDIS_ANNOUNCE=" + name, "REDIS_PRIMARY=redis-a", "REDIS_SENTINELS=" + sentinels}
	}
	b.run("redis-a", image, env("redis-a"), nil, "primary")
	b.run("redis-b", image, env("redis-b"), nil, "replica")
	for _, s := range strings.Split(sentinels, ",") {
		b.run(s, image, env(s), nil, "sentinel")
	}
	// redis runs redis-cli ARGS in the container from (the sentinels and redis-b stay up), and
	// returns its output's lines.
	redis := func(ctx context.Context, from string, args ...string) ([]string, error) {
		r, err := b.exec(ctx, from, append([]string{"redis-cli", "--raw"}, args...)...)
		if err != nil {
			return nil, err
		}
		if r.ExitCode != 0 {
			return nil, fmt.Errorf("redis-cli %v: exit %d: %s", args, r.ExitCode, r.Stderr)
		}
		return strings.Split(strings.TrimSpace(r.Stdout), "\n"), nil
	}
	// Each sentinel knows the primary, its replica and the two other sentinels.
	for _, s := range strings.Split(sentinels, ",") {
		if _, err := wait.For(ctx, s+" to know the replica and the other sentinels", sentinelReadyTimeout, 250*time.Millisecond, func(ctx context.Context) wait.Result {
			if err := b.exited(ctx, s); err != nil {
				return wait.Fail(err)
			}
			lines, err := redis(ctx, s, "-p", "26379", "SENTINEL", "master", "mymaster")
			if err != nil {
				return wait.Continue("%v", err)
			}
			f := map[string]string{}
			for i := 0; i+1 < len(lines); i += 2 {
				f[lines[i]] = lines[i+1]
			}
			seen := fmt.Sprintf("ip=%s flags=%s num-slaves=%s num-other-sentinels=%s quorum=%s", f["ip"], f["flags"], f["num-slaves"], f["num-other-sentinels"], f["quorum"])
			if f["ip"] != "redis-a" || f["flags"] != "master" || f["num-slaves"] != "1" || f["num-other-sentinels"] != "2" || f["quorum"] != "2" {
				return wait.Continue("%s", seen)
			}
			return wait.Done(seen)
		}); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := redis(ctx, "s1", "-h", "redis-a", "SET", "k", "before the failover"); err != nil || out[0] != "OK" {
		t.Fatalf("SET on redis-a: %v %v", out, err)
	}
	if out, err := redis(ctx, "s1", "-h", "redis-a", "WAIT", "1", "5000"); err != nil || out[0] != "1" {
		t.Fatalf("WAIT on redis-a: %v %v (the replica did not acknowledge)", out, err)
	}

	// Kill the primary: the sentinels agree it is down and promote the replica.
	killed := time.Now()
	b.kill("redis-a")
	if _, err := wait.For(ctx, "the sentinels to promote redis-b", sentinelFailoverTimeout, 100*time.Millisecond, func(ctx context.Context) wait.Result {
		addr, err := redis(ctx, "s1", "-p", "26379", "SENTINEL", "get-master-addr-by-name", "mymaster")
		if err != nil {
			return wait.Continue("%v", err)
		}
		role, err := redis(ctx, "redis-b", "ROLE")
		if err != nil {
			return wait.Continue("%v", err)
		}
		if addr[0] != "redis-b" || role[0] != "master" {
			return wait.Continue("s1 says the primary is %v; redis-b's role is %s", addr, role[0])
		}
		return wait.Done("redis-b is the primary")
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("kill of the primary redis-a: redis-b promoted %s after it", time.Since(killed).Round(100*time.Millisecond))
	if out, err := redis(ctx, "redis-b", "GET", "k"); err != nil || out[0] != "before the failover" {
		t.Errorf("GET k on the new primary: %v %v", out, err)
	}
	if out, err := redis(ctx, "redis-b", "SET", "k", "after the failover"); err != nil || out[0] != "OK" {
		t.Errorf("SET on the new primary: %v %v", out, err)
	}

	// The old primary starts again: the sentinels say redis-b is the primary, so it starts as
	// its replica (its entry point asks them), and gets what was written since.
	restarted := time.Now()
	b.start("redis-a")
	if _, err := wait.For(ctx, "redis-a to replicate redis-b", sentinelReadyTimeout, 250*time.Millisecond, func(ctx context.Context) wait.Result {
		lines, err := redis(ctx, "redis-a", "INFO", "replication")
		if err != nil {
			return wait.Continue("%v", err)
		}
		info := strings.Join(lines, " ")
		if !strings.Contains(info, "role:slave") || !strings.Contains(info, "master_host:redis-b") || !strings.Contains(info, "master_link_status:up") {
			return wait.Continue("%s", info)
		}
		return wait.Done("a replica of redis-b")
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("redis-a started again: a replica of redis-b %s after its start", time.Since(restarted).Round(100*time.Millisecond))
	if logs := b.logs("redis-a"); !strings.Contains(logs, "a replica of redis-b") {
		t.Errorf("redis-a's entry point did not ask the sentinels for the primary:\n%s", lastLines(logs, 20))
	}
	if out, err := redis(ctx, "redis-a", "GET", "k"); err != nil || out[0] != "after the failover" {
		t.Errorf("GET k on redis-a: %v %v", out, err)
	}
}
