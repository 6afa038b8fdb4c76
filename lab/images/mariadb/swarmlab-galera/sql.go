package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// The program talks to its own server with Debian's mariadb client on the server's socket, as
// root: root@localhost is authenticated by the socket's peer (unix_socket), so no password is
// needed here, nor in the health check.

const socketPath = "/run/mysqld/mysqld.sock"

// query runs sql on the local server and returns its rows, tab-separated, without headers.
func query(ctx context.Context, sql string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "mariadb", "--protocol=socket", "--socket="+socketPath, "--user=root",
		"--batch", "--skip-column-names", "--connect-timeout=2")
	cmd.Stdin = strings.NewReader(sql)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("mariadb: %v: %s", err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// wsrepStatus is the server's wsrep_* status variables.
func wsrepStatus(ctx context.Context) (map[string]string, error) {
	out, err := query(ctx, "SHOW GLOBAL STATUS LIKE 'wsrep_%';")
	if err != nil {
		return nil, err
	}
	return parseRows(out), nil
}

func parseRows(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(line, "\t")
		if ok {
			m[k] = v
		}
	}
	return m
}

// synced is the health of a member: ready for queries (wsrep_ready ON) and Synced (local state
// 4: not joining, not a donor, not desynced), in the primary component.
func synced(st map[string]string) (bool, string) {
	ok := st["wsrep_ready"] == "ON" && st["wsrep_local_state"] == "4" && st["wsrep_cluster_status"] == "Primary"
	return ok, fmt.Sprintf("wsrep_ready=%s wsrep_local_state=%s (%s) wsrep_cluster_status=%s wsrep_cluster_size=%s",
		st["wsrep_ready"], st["wsrep_local_state"], st["wsrep_local_state_comment"], st["wsrep_cluster_status"], st["wsrep_cluster_size"])
}

// literal quotes s as an SQL string.
func literal(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\x00", `\0`, "\n", `\n`, "\r", `\r`, "\x1a", `\Z`)
	return "'" + r.Replace(s) + "'"
}

// identifier quotes s as an SQL name.
func identifier(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// accountsSQL makes the database, the user and root's passwords what the configuration says.
// Every statement can run again (at every start of every member: a password changed in the
// secret is applied): IF NOT EXISTS, then ALTER. In a cluster they replicate (Galera runs
// account statements and DDL in total order on every member).
func accountsSQL(c Config) string {
	var b strings.Builder
	if c.RootPassword != "" {
		pw := literal(c.RootPassword)
		// root keeps the socket (this program, the health check) and gets the password too
		fmt.Fprintf(&b, "ALTER USER root@localhost IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD(%s);\n", pw)
		fmt.Fprintf(&b, "CREATE USER IF NOT EXISTS root@'%%' IDENTIFIED BY %s;\n", pw)
		fmt.Fprintf(&b, "ALTER USER root@'%%' IDENTIFIED BY %s;\n", pw)
		b.WriteString("GRANT ALL PRIVILEGES ON *.* TO root@'%' WITH GRANT OPTION;\n")
	}
	if c.Database != "" {
		fmt.Fprintf(&b, "CREATE DATABASE IF NOT EXISTS %s;\n", identifier(c.Database))
	}
	if c.User != "" {
		u, pw := literal(c.User)+"@'%'", literal(c.Password)
		fmt.Fprintf(&b, "CREATE USER IF NOT EXISTS %s IDENTIFIED BY %s;\n", u, pw)
		fmt.Fprintf(&b, "ALTER USER %s IDENTIFIED BY %s;\n", u, pw)
		if c.Database != "" {
			fmt.Fprintf(&b, "GRANT ALL PRIVILEGES ON %s.* TO %s;\n", identifier(c.Database), u)
		}
	}
	return b.String()
}
