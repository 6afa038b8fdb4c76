package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	dataDir  = "/var/lib/mysql"
	runDir   = "/run/mysqld"
	confPath = "/etc/mysql/my.cnf"
	provider = "/usr/lib/galera/libgalera_smm.so"
)

// pollEvery is how often a waiting member asks its peers again.
var pollEvery = time.Second

// runServer runs mariadbd (args: "mariadbd" and the user's options): a standalone server, or with
// GALERA_PEERS a member of a Galera cluster, which first decides how to start (decide.go).
func runServer(ctx context.Context, c Config, args []string) error {
	if err := prepareDirs(); err != nil {
		return err
	}
	nets := localNets()
	lookup := net.DefaultResolver.LookupHost
	peers := resolvePeers(ctx, lookup, c.Peers, localSet(nets))
	if c.NodeAddress == "" {
		c.NodeAddress = nodeAddress(nets, peers)
	}
	if err := os.WriteFile(confPath, []byte(myCnf(c)), 0o644); err != nil {
		return err
	}
	if !c.Galera() {
		if !hasData() {
			if err := installDB(ctx); err != nil {
				return err
			}
		}
		return supervise(ctx, c, args[1:], nil)
	}

	logf("member %s: reading its position", c.NodeName)
	self, err := ownState(ctx, c)
	if err != nil {
		return err
	}
	st := &state{m: self}
	if err := serveStatus(ctx, c.StatusPort, st.get); err != nil {
		return err
	}
	logf("member %s at %s: %s; peers %s (%s), %d database members", self.Name, self.Addr, position(self), strings.Join(c.Peers, ","), strings.Join(peers, ","), c.Size)

	// Ask the peers until the rules say join or bootstrap.
	var d Decision
	last := ""
	for {
		peers = resolvePeers(ctx, lookup, c.Peers, localSet(nets))
		d = decide(self, fetchAll(ctx, peers, c.StatusPort), c.Size, c.BootstrapNode)
		if d.Reason != last {
			logf("%s: %s", d.Action, d.Reason)
			last = d.Reason
		}
		if d.Action == Fail {
			return errors.New(d.Reason)
		}
		if d.Action != Wait {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pollEvery):
		}
	}

	opts := []string{"--wsrep-cluster-address=gcomm://" + strings.Join(peers, ",")}
	if d.Action == Bootstrap {
		if self.UUID == "" {
			// a new cluster: this member's data is the first (made here, unless the data
			// directory is a standalone server's)
			if hasData() {
				logf("the data directory holds a server's data but no grastate.dat: the new cluster starts from them")
			} else if err := installDB(ctx); err != nil {
				return err
			}
		} else if err := setSafeToBootstrap(filepath.Join(dataDir, "grastate.dat")); err != nil {
			// mariadbd refuses --wsrep-new-cluster unless grastate.dat says safe_to_bootstrap: 1
			return err
		}
		opts = append(opts, "--wsrep-new-cluster")
	}
	if self.UUID != "" && self.Seqno >= 0 {
		// where this member's data stop: a joiner asks for what follows (IST), a bootstrapper
		// goes on from there (after a kill, grastate.dat says -1 and only InnoDB knows)
		opts = append(opts, fmt.Sprintf("--wsrep-start-position=%s:%d", self.UUID, self.Seqno))
	}
	return supervise(ctx, c, append(opts, args[1:]...), st)
}

// ownState is this member's position, from grastate.dat, or after a kill (seqno -1) from InnoDB
// (`mariadbd --wsrep-recover`, what mysqld_safe does). A member killed while it ran may even have
// a grastate.dat without the cluster's uuid (seen after a bootstrap): InnoDB has both.
func ownState(ctx context.Context, c Config) (Member, error) {
	m := Member{Name: c.NodeName, Addr: c.NodeAddress, Role: roleDB, Phase: phaseWaiting, Seqno: -1}
	gs, err := readGrastate(filepath.Join(dataDir, "grastate.dat"))
	if err != nil {
		return m, err
	}
	m.UUID, m.Seqno, m.SafeToBootstrap = gs.UUID, gs.Seqno, gs.SafeToBootstrap
	if m.Seqno >= 0 || !hasData() {
		return m, nil
	}
	uuid, seqno, err := wsrepRecover(ctx)
	switch {
	case err != nil && m.UUID == "":
		// data of no known cluster nor position: nothing safe to do (it could be the most advanced)
		return m, fmt.Errorf("the data directory holds data whose position cannot be recovered: %v", err)
	case err != nil:
		// Its data may be the most advanced: it may join (a full state transfer), never
		// bootstrap (decide.go).
		logf("warning: the position of this member's data cannot be recovered (%v): it may join a running cluster, not bootstrap one", err)
	case uuid == "":
		// InnoDB holds no cluster position: a standalone server's data (or none yet)
		logf("InnoDB holds no cluster position: data of no cluster")
		m.UUID, m.Seqno = "", -1
	default:
		if m.UUID != "" && uuid != m.UUID {
			logf("warning: InnoDB says %s:%d, grastate.dat %s: InnoDB is believed", uuid, seqno, m.UUID)
		}
		m.UUID, m.Seqno = uuid, seqno
	}
	return m, nil
}

func position(m Member) string {
	if m.UUID == "" {
		return "no data"
	}
	return fmt.Sprintf("data at %s:%d, safe_to_bootstrap %v", m.UUID, m.Seqno, m.SafeToBootstrap)
}

// wsrepRecover reads the last committed position from InnoDB.
func wsrepRecover(ctx context.Context) (string, int64, error) {
	logFile := filepath.Join(runDir, "wsrep-recover.log")
	os.Remove(logFile)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	// (mariadbd checks that the rsync SST has a cluster address, even to recover)
	cmd := exec.CommandContext(ctx, "mariadbd", "--wsrep-recover", "--wsrep-cluster-address=gcomm://", "--log-error="+logFile)
	out, err := cmd.CombinedOutput()
	log, _ := os.ReadFile(logFile)
	if err != nil {
		return "", -1, fmt.Errorf("mariadbd --wsrep-recover: %v: %s%s", err, out, tail(string(log), 5))
	}
	uuid, seqno, ok := parseRecovered(string(log))
	if !ok {
		return "", -1, fmt.Errorf("mariadbd --wsrep-recover said no position: %s", tail(string(log), 5))
	}
	logf("recovered from InnoDB: %s:%d", uuid, seqno)
	return uuid, seqno, nil
}

// installDB makes the system tables of an empty data directory; root is authenticated by the
// socket only until accountsSQL gives it a password. (--force: the host name need not resolve;
// with --skip-name-resolve no account depends on it.)
func installDB(ctx context.Context) error {
	logf("initializing the data directory %s", dataDir)
	cmd := exec.CommandContext(ctx, "mariadb-install-db", "--user=mysql", "--datadir="+dataDir,
		"--auth-root-authentication-method=socket", "--skip-test-db", "--skip-name-resolve", "--force", "--wsrep-on=OFF")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("mariadb-install-db: %v\n%s", err, out)
	}
	return nil
}

func hasData() bool {
	_, err := os.Stat(filepath.Join(dataDir, "mysql"))
	return err == nil
}

// prepareDirs gives the mysql user its directories (a new volume is root's).
func prepareDirs() error {
	u, err := user.Lookup("mysql")
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	for _, d := range []string{dataDir, runDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		err := filepath.Walk(d, func(p string, fi os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && (int(st.Uid) != uid || int(st.Gid) != gid) {
				return os.Lchown(p, uid, gid)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// defaultProviderOptions: failure detection in seconds rather than Galera's 5 s suspicion and
// 15 s eviction (what the lab measures: how soon the survivors write again); a gcache big enough
// that a member killed for a while rejoins by IST; and no pc.recovery (gvwstate.dat), since
// this program does the recovery and picks the member to bootstrap from.
const defaultProviderOptions = "gcache.size=128M; pc.recovery=FALSE; " + evsOptions

// evsOptions are the failure detection options, the arbitrator's too.
const evsOptions = "evs.suspect_timeout=PT3S; evs.inactive_timeout=PT6S; evs.install_timeout=PT6S"

// myCnf is the server's configuration. Galera needs row-based binary logging, InnoDB, and
// interleaved auto-increment locks; state transfers (SST) copy the data directory with rsync
// (the donor is read-only while it copies: seconds for a lab's data; mariabackup would not
// block it, but needs socat and a backup user, for data this small not worth it).
func myCnf(c Config) string {
	var b strings.Builder
	fmt.Fprintf(&b, `# written by swarmlab-galera at each start
[client-server]
socket = %s

[mysqld]
user = mysql
datadir = %s
bind-address = 0.0.0.0
skip-name-resolve
character-set-server = utf8mb4
collation-server = utf8mb4_general_ci
`, socketPath, dataDir)
	if !c.Galera() {
		return b.String()
	}
	opts := defaultProviderOptions
	if c.ProviderOptions != "" {
		opts += "; " + c.ProviderOptions
	}
	fmt.Fprintf(&b, `binlog_format = ROW
default_storage_engine = InnoDB
innodb_autoinc_lock_mode = 2

[galera]
wsrep_on = ON
wsrep_provider = %s
wsrep_cluster_name = %s
wsrep_node_name = %s
wsrep_node_address = %s
wsrep_sst_method = rsync
wsrep_provider_options = "%s"
`, provider, c.ClusterName, c.NodeName, c.NodeAddress, opts)
	return b.String()
}

// state is this member's Member, which the status port serves: while the server runs, read
// from it (at most once a second).
type state struct {
	mu      sync.Mutex
	m       Member
	running bool
	asked   time.Time
}

func (s *state) get() Member {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running && time.Since(s.asked) > time.Second {
		s.asked = time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, err := wsrepStatus(ctx)
		cancel()
		if err != nil {
			s.m.Cluster, s.m.State = "", "no answer: "+err.Error()
		} else {
			s.m.Cluster, s.m.State = st["wsrep_cluster_status"], st["wsrep_local_state_comment"]
			if n, err := strconv.ParseInt(st["wsrep_last_committed"], 10, 64); err == nil {
				s.m.Seqno = n
			}
			if u := st["wsrep_cluster_state_uuid"]; u != "" && u != zeroUUID {
				s.m.UUID = u
			}
		}
	}
	return s.m
}

func (s *state) started() {
	s.mu.Lock()
	s.m.Phase, s.running = phaseRunning, true
	s.mu.Unlock()
}

// supervise runs mariadbd with opts as this process's child (so that the status port goes on
// answering), passes it the signals a container gets, sets the accounts once it serves, and
// returns when it ends.
func supervise(ctx context.Context, c Config, opts []string, st *state) error {
	cmd := exec.Command("mariadbd", opts...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	logf("starting mariadbd %s", strings.Join(opts, " "))
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGHUP)
	if err := cmd.Start(); err != nil {
		return err
	}
	if st != nil {
		st.started()
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				cmd.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	go func() {
		// Once the server serves (a Galera member: once it is Synced), the accounts.
		for {
			select {
			case <-done:
				return
			case <-time.After(pollEvery):
			}
			if c.Galera() {
				st, err := wsrepStatus(ctx)
				if err != nil {
					continue
				}
				if ok, _ := synced(st); !ok {
					continue
				}
			} else if _, err := query(ctx, "SELECT 1;"); err != nil {
				continue
			}
			if sql := accountsSQL(c); sql != "" {
				if _, err := query(ctx, sql); err != nil {
					logf("setting the accounts: %v", err)
					continue
				}
			}
			logf("ready: accounts set (database %q, user %q)", c.Database, c.User)
			return
		}
	}()
	err := cmd.Wait()
	close(done)
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return exitCode(128 + int(ws.Signal()))
		}
		return exitCode(ee.ExitCode())
	}
	return err
}

// exitCode is an error that makes the program exit with that code, saying nothing more.
type exitCode int

func (e exitCode) Error() string { return "exit " + strconv.Itoa(int(e)) }

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "swarmlab-galera: "+format+"\n", args...)
}
