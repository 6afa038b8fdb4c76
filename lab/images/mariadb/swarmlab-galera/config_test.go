package main

import (
	"context"
	"errors"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func files(m map[string]string) func(string) ([]byte, error) {
	return func(p string) ([]byte, error) {
		if v, ok := m[p]; ok {
			return []byte(v), nil
		}
		return nil, errors.New("open " + p + ": no such file or directory")
	}
}

func TestConfigFrom(t *testing.T) {
	secrets := files(map[string]string{"/run/secrets/db_password": "s3cr'et\n"})
	c, err := configFrom(env(map[string]string{
		"GALERA_PEERS": " tasks.db, tasks.garbd ,", "GALERA_SIZE": "2", "GALERA_BOOTSTRAP_NODE": "db-1",
		"MARIADB_DATABASE": "crud", "MARIADB_USER": "crud", "MARIADB_PASSWORD_FILE": "/run/secrets/db_password",
	}), secrets, "abc123", false)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.Peers, "|") != "tasks.db|tasks.garbd" || c.Size != 2 || c.NodeName != "abc123" || c.ClusterName != "swarmlab" ||
		c.StatusPort != defaultStatusPort || c.Password != "s3cr'et" || c.RootPassword != "s3cr'et" || !c.Galera() {
		t.Errorf("config %+v", c)
	}

	bad := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"GALERA_PEERS": "db2"}, "GALERA_SIZE is not"},
		{map[string]string{"GALERA_PEERS": "db2", "GALERA_SIZE": "0"}, "GALERA_SIZE=\"0\""},
		{map[string]string{"GALERA_STATUS_PORT": "x"}, "GALERA_STATUS_PORT"},
		{map[string]string{"MARIADB_PASSWORD": "a", "MARIADB_PASSWORD_FILE": "/f"}, "exclusive"},
		{map[string]string{"MARIADB_PASSWORD_FILE": "/nope"}, "MARIADB_PASSWORD_FILE: open /nope"},
		{map[string]string{"MARIADB_USER": "crud"}, "has no password"},
	}
	for _, b := range bad {
		if _, err := configFrom(env(b.env), secrets, "h", false); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%v: error %v, want %q", b.env, err, b.want)
		}
	}
	// the arbitrator needs peers, and nothing else
	if _, err := configFrom(env(map[string]string{"GALERA_PEERS": "tasks.db"}), secrets, "h", true); err != nil {
		t.Errorf("garbd: %v", err)
	}
	if _, err := configFrom(env(nil), secrets, "h", true); err == nil {
		t.Error("garbd without peers is no error")
	}
}

func TestAccountsSQL(t *testing.T) {
	sql := accountsSQL(Config{Database: "cr`ud", User: "app", Password: `p'w\`, RootPassword: "r"})
	for _, want := range []string{
		"CREATE DATABASE IF NOT EXISTS `cr``ud`;",
		`CREATE USER IF NOT EXISTS 'app'@'%' IDENTIFIED BY 'p\'w\\';`,
		`ALTER USER 'app'@'%' IDENTIFIED BY 'p\'w\\';`,
		"GRANT ALL PRIVILEGES ON `cr``ud`.* TO 'app'@'%';",
		"ALTER USER root@localhost IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('r');",
	} {
		if !strings.Contains(sql, want) {
			t.Errorf("accounts SQL lacks %s:\n%s", want, sql)
		}
	}
	if accountsSQL(Config{}) != "" {
		t.Error("nothing to set, yet SQL")
	}
}

func TestMyCnf(t *testing.T) {
	c := Config{Peers: []string{"db2"}, ClusterName: "crud", NodeName: "db1", NodeAddress: "10.0.0.1", ProviderOptions: "gcache.size=16M"}
	cnf := myCnf(c)
	for _, want := range []string{"wsrep_on = ON", "wsrep_cluster_name = crud", "wsrep_node_address = 10.0.0.1", "wsrep_sst_method = rsync",
		"binlog_format = ROW", "pc.recovery=FALSE; evs.suspect_timeout=PT3S", "evs.install_timeout=PT6S; gcache.size=16M\"", "innodb_autoinc_lock_mode = 2"} {
		if !strings.Contains(cnf, want) {
			t.Errorf("my.cnf lacks %q:\n%s", want, cnf)
		}
	}
	if strings.Contains(myCnf(Config{}), "wsrep") {
		t.Error("a standalone server's my.cnf has wsrep settings")
	}
}

func TestSynced(t *testing.T) {
	st := parseRows("wsrep_ready\tON\nwsrep_local_state\t4\nwsrep_local_state_comment\tSynced\nwsrep_cluster_status\tPrimary\nwsrep_cluster_size\t3\n")
	if ok, say := synced(st); !ok || !strings.Contains(say, "wsrep_cluster_size=3") {
		t.Errorf("synced = %v, %s", ok, say)
	}
	st["wsrep_local_state"] = "2"
	if ok, _ := synced(st); ok {
		t.Error("a donor is synced")
	}
}

func TestResolvePeers(t *testing.T) {
	lookup := func(_ context.Context, name string) ([]string, error) {
		switch name {
		case "tasks.db":
			return []string{"10.0.1.5", "10.0.1.4", "fe80::1"}, nil
		case "garbd":
			return []string{"10.0.1.9", "10.0.1.5"}, nil
		}
		return nil, errors.New("no such host")
	}
	got := resolvePeers(context.Background(), lookup, []string{"tasks.db", "nothing", "garbd"}, map[string]bool{"10.0.1.4": true})
	if strings.Join(got, ",") != "10.0.1.5,10.0.1.9" {
		t.Errorf("peers %v", got)
	}
	_, n1, _ := net.ParseCIDR("172.18.0.3/16")
	_, n2, _ := net.ParseCIDR("10.0.1.4/24")
	n1.IP, n2.IP = net.ParseIP("172.18.0.3"), net.ParseIP("10.0.1.4")
	if a := nodeAddress([]*net.IPNet{n1, n2}, got); a != "10.0.1.4" {
		t.Errorf("node address %s, want the one on the peers' network", a)
	}
	if a := nodeAddress([]*net.IPNet{n1, n2}, nil); a != "172.18.0.3" {
		t.Errorf("node address without peers %s", a)
	}
}

// The status port serves the member's state; a peer that does not answer is left out.
func TestStatusRoundTrip(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	port := closedPort(t)
	want := db("db1", phaseWaiting, clusterA, 42)
	if err := serveStatus(ctx, port, func() Member { return want }); err != nil {
		t.Fatal(err)
	}
	dead := httptest.NewServer(nil) // answers 404
	defer dead.Close()
	got := fetchAll(ctx, []string{"127.0.0.1"}, port)
	if len(got) != 1 || got[0] != want {
		t.Errorf("fetchAll = %+v, want [%+v]", got, want)
	}
	if _, err := fetchState(ctx, strings.TrimPrefix(dead.URL, "http://")); err == nil {
		t.Error("a 404 is a state")
	}
	// nothing listens on the port of the closed listener
	if got := fetchAll(ctx, []string{"127.0.0.1"}, closedPort(t)); len(got) != 0 {
		t.Errorf("fetchAll of a closed port = %+v", got)
	}
}

func closedPort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
