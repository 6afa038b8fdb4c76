package testenv

import (
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/swarmlab/swarmlab/app/crud/internal/storage"
)

// GaleraLib is where Debian's galera-4 puts the provider.
const GaleraLib = "/usr/lib/galera/libgalera_smm.so"

// Password is the password of the users DB makes: crud (every database
// named crud*) and admin (everything, for the tests' own statements).
const Password = "crud-test-secret"

// DB is a MariaDB server, or a Galera cluster of several, on loopback.
type DB struct {
	// Addrs are the nodes' SQL addresses, host:port.
	Addrs  []string
	Galera bool
	nodes  []*dbNode
	dir    string
	dbs    atomic.Int64
}

type dbNode struct {
	proc
	addr, socket, cnf string
}

var (
	shared     *DB
	sharedErr  error
	sharedSkip string
	sharedOnce sync.Once
)

// Main runs the tests, then stops the shared database, if one was started.
// Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.Stop()
	}
	os.Exit(code)
}

// SharedGalera starts one Galera cluster of nodes nodes per test binary
// (use with Main); without the galera-4 package it is skipped.
func SharedGalera(tb testing.TB, nodes int) *DB {
	tb.Helper()
	need(tb, "mariadb-server galera-4", "mariadbd", "mariadb-install-db", "mariadb", "rsync")
	if _, err := os.Stat(GaleraLib); err != nil {
		tb.Skipf("no Galera provider (apt-get install -y galera-4): %v", err)
	}
	sharedOnce.Do(func() { shared, sharedErr = startDB(nodes, true) })
	if sharedErr != nil {
		tb.Fatal(sharedErr)
	}
	return shared
}

// StartMariaDB starts one MariaDB server without Galera, stopped when the
// test ends.
func StartMariaDB(tb testing.TB) *DB {
	tb.Helper()
	need(tb, "mariadb-server", "mariadbd", "mariadb-install-db", "mariadb")
	d, err := startDB(1, false)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(d.Stop)
	return d
}

func startDB(n int, galera bool) (*DB, error) {
	dir, err := tempDir("crud-db-")
	if err != nil {
		return nil, err
	}
	d := &DB{Galera: galera, dir: dir}
	type ports struct{ sql, gcomm, ist, sst int }
	ps := make([]ports, n)
	var gcomm []string
	for i := range ps {
		ps[i] = ports{freePort(), freePort(), freePort(), freePort()}
		gcomm = append(gcomm, "127.0.0.1:"+strconv.Itoa(ps[i].gcomm))
	}
	// mariadbd runs as mysql (its rsync state transfer must read and
	// write the datadir as the same user), so the tree is mysql's.
	runAs := ""
	if os.Geteuid() == 0 {
		runAs = "mysql"
		if err := chown(dir, runAs); err != nil {
			d.Stop()
			return nil, err
		}
	}
	for i, p := range ps {
		nd := filepath.Join(dir, "n"+strconv.Itoa(i+1))
		node := &dbNode{addr: "127.0.0.1:" + strconv.Itoa(p.sql), socket: nd + ".sock", cnf: nd + ".cnf"}
		cnf := fmt.Sprintf(`[mysqld]
datadir=%s
socket=%s
pid-file=%s.pid
log-error=%s.err
port=%d
bind-address=127.0.0.1
skip-name-resolve
performance_schema=OFF
innodb_buffer_pool_size=16M
innodb_log_file_size=4M
# Throwaway data: no fsync wait.
innodb_flush_log_at_trx_commit=0
binlog_format=ROW
default_storage_engine=InnoDB
innodb_autoinc_lock_mode=2
`, nd, node.socket, nd, nd, p.sql)
		if galera {
			cnf += fmt.Sprintf(`wsrep_on=ON
wsrep_provider=%s
wsrep_cluster_name=crudtest
wsrep_cluster_address=gcomm://%s
wsrep_node_address=127.0.0.1
wsrep_node_name=n%d
wsrep_sst_method=rsync
wsrep_sst_receive_address=127.0.0.1:%d
wsrep_provider_options="gmcast.listen_addr=tcp://127.0.0.1:%d;ist.recv_addr=127.0.0.1:%d;gcache.size=16M"
`, GaleraLib, strings.Join(gcomm, ","), i+1, p.sst, p.gcomm, p.ist)
		}
		if err := os.WriteFile(node.cnf, []byte(cnf), 0o644); err != nil {
			return nil, err
		}
		install := exec.Command("mariadb-install-db", "--no-defaults", "--datadir="+nd,
			"--auth-root-authentication-method=normal", "--skip-test-db",
			"--innodb-log-file-size=4M", "--innodb-buffer-pool-size=16M")
		if runAs != "" {
			install.Args = append(install.Args, "--user="+runAs)
		}
		if out, err := install.CombinedOutput(); err != nil {
			d.Stop()
			return nil, fmt.Errorf("mariadb-install-db: %v\n%s", err, out)
		}
		args := []string{"mariadbd", "--defaults-file=" + node.cnf}
		if runAs != "" {
			args = append(args, "--user="+runAs)
		}
		if galera && i == 0 {
			args = append(args, "--wsrep-new-cluster")
		}
		node.proc = proc{name: "mariadb n" + strconv.Itoa(i+1), args: args}
		d.nodes = append(d.nodes, node)
		d.Addrs = append(d.Addrs, node.addr)
	}
	// One node after the other: each joiner takes a state transfer from a
	// synced node.
	for i, node := range d.nodes {
		if err := node.start(); err != nil {
			d.Stop()
			return nil, err
		}
		if err := d.WaitReady(i, 2*time.Minute); err != nil {
			d.Stop()
			return nil, err
		}
		if i == 0 {
			if _, err := node.cli(`CREATE USER 'crud'@'127.0.0.1' IDENTIFIED BY '` + Password + `';
GRANT ALL ON ` + "`crud%`" + `.* TO 'crud'@'127.0.0.1';
CREATE USER 'admin'@'127.0.0.1' IDENTIFIED BY '` + Password + `';
GRANT ALL ON *.* TO 'admin'@'127.0.0.1' WITH GRANT OPTION;`); err != nil {
				d.Stop()
				return nil, err
			}
		}
	}
	return d, nil
}

func chown(dir, name string) error {
	u, err := user.Lookup(name)
	if err != nil {
		return fmt.Errorf("mariadbd runs as %s: %w", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return os.Chown(dir, uid, gid)
}

// cli runs statements as root through the node's socket.
func (n *dbNode) cli(stmts string) (string, error) {
	out, err := exec.Command("mariadb", "--no-defaults", "-S", n.socket, "-uroot", "-N", "-B", "-e", stmts).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s: %s: %v\n%s", n.name, stmts, err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// WaitReady waits until node i serves: up, and with Galera synced with
// the cluster and in its primary component.
func (d *DB) WaitReady(i int, timeout time.Duration) error {
	n := d.nodes[i]
	return waitFor(timeout, n.name+" ready", func() error {
		if !n.running() {
			return fmt.Errorf("exited:\n%s\n%s", n.tail(), readTail(strings.TrimSuffix(n.cnf, ".cnf")+".err"))
		}
		if !d.Galera {
			_, err := n.cli("SELECT 1")
			return err
		}
		out, err := n.cli("SHOW STATUS WHERE Variable_name IN ('wsrep_ready', 'wsrep_local_state_comment')")
		if err != nil {
			return err
		}
		if !strings.Contains(out, "Synced") || !strings.Contains(out, "ON") {
			return fmt.Errorf("%s", strings.ReplaceAll(out, "\n", ", "))
		}
		return nil
	})
}

func readTail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// NewDatabase creates an empty database and returns a storage config for
// it on the given nodes (every node if none is given).
func (d *DB) NewDatabase(tb testing.TB, nodes ...int) storage.Config {
	tb.Helper()
	name := fmt.Sprintf("crud_%d", d.dbs.Add(1))
	if _, err := d.nodes[0].cli("CREATE DATABASE " + name); err != nil {
		tb.Fatal(err)
	}
	return d.Config(name, nodes...)
}

// Config is a storage config for database name on the given nodes (every
// node if none is given), causal reads on.
func (d *DB) Config(name string, nodes ...int) storage.Config {
	cfg := storage.Config{User: "crud", Password: Password, Database: name, CausalReads: true,
		DownFor: time.Second}
	if len(nodes) == 0 {
		cfg.Addrs = append(cfg.Addrs, d.Addrs...)
	}
	for _, i := range nodes {
		cfg.Addrs = append(cfg.Addrs, d.Addrs[i])
	}
	return cfg
}

// Admin is a connection pool to node i as a user with every privilege.
func (d *DB) Admin(tb testing.TB, i int) *sql.DB {
	tb.Helper()
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr = "admin", Password, "tcp", d.Addrs[i]
	db, err := sql.Open("mysql", c.FormatDSN())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// Isolate cuts Galera node i off from the others (gmcast.isolate) and waits
// until it has left the primary component, so that it answers "WSREP has
// not yet prepared node for application use"; the cleanup lets it rejoin
// and waits until it is synced again.
func (d *DB) Isolate(tb testing.TB, i int) {
	tb.Helper()
	n := d.nodes[i]
	if _, err := n.cli("SET GLOBAL wsrep_provider_options='gmcast.isolate=1'"); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if _, err := n.cli("SET GLOBAL wsrep_provider_options='gmcast.isolate=0'"); err != nil {
			tb.Error(err)
		}
		if err := d.WaitReady(i, time.Minute); err != nil {
			tb.Error(err)
		}
	})
	if err := waitFor(30*time.Second, n.name+" out of the primary component", func() error {
		out, err := n.cli("SHOW STATUS LIKE 'wsrep_ready'")
		if err != nil {
			return err
		}
		if !strings.HasSuffix(out, "OFF") {
			return fmt.Errorf("%s", out)
		}
		return nil
	}); err != nil {
		tb.Fatal(err)
	}
}

// Stop kills every node and removes the files.
func (d *DB) Stop() {
	for _, n := range d.nodes {
		n.kill()
	}
	os.RemoveAll(d.dir)
}
