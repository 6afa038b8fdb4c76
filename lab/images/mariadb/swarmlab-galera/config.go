package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Config is what the environment says (the stack file's environment and secrets).
type Config struct {
	// Peers are the DNS names of the cluster's other members, database members and
	// arbitrator: GALERA_PEERS="tasks.db,tasks.garbd" in a swarm (the tasks of dnsrr services), or
	// "db1,db2,garbd" on a bridge network. A name may stand for several members; this member's
	// own addresses are left out. Empty: a standalone server, as the official image runs.
	Peers []string
	// Size is the number of database members of the cluster (GALERA_SIZE): in a recovery, the
	// members wait until that many have said their position (decide.go).
	Size          int
	ClusterName   string // GALERA_CLUSTER_NAME (wsrep_cluster_name, garbd --group); default swarmlab
	NodeName      string // GALERA_NODE_NAME (wsrep_node_name); default the host name
	NodeAddress   string // GALERA_NODE_ADDRESS; default the local address on the peers' network
	BootstrapNode string // GALERA_BOOTSTRAP_NODE: the member that starts a new cluster; may be empty
	// ProviderOptions are added to the provider's (GALERA_PROVIDER_OPTIONS, "a=b; c=d"): they win.
	ProviderOptions string
	StatusPort      int // GALERA_STATUS_PORT: where the members tell each other their state; 4569

	RootPassword string // MARIADB_ROOT_PASSWORD[_FILE]; default MARIADB_PASSWORD
	Database     string // MARIADB_DATABASE
	User         string // MARIADB_USER
	Password     string // MARIADB_PASSWORD[_FILE]: the user's
}

// Galera tells whether this member is part of a cluster.
func (c Config) Galera() bool { return len(c.Peers) > 0 }

const defaultStatusPort = 4569

// configFrom reads the configuration from getenv, and the files that *_FILE variables name
// (swarm secrets: /run/secrets/NAME) through readFile. arbitrator: for garbd, which needs no
// size nor passwords.
func configFrom(getenv func(string) string, readFile func(string) ([]byte, error), hostname string, arbitrator bool) (Config, error) {
	c := Config{
		ClusterName:     or(getenv("GALERA_CLUSTER_NAME"), "swarmlab"),
		NodeName:        or(getenv("GALERA_NODE_NAME"), hostname),
		NodeAddress:     getenv("GALERA_NODE_ADDRESS"),
		BootstrapNode:   getenv("GALERA_BOOTSTRAP_NODE"),
		ProviderOptions: getenv("GALERA_PROVIDER_OPTIONS"),
		StatusPort:      defaultStatusPort,
		Database:        getenv("MARIADB_DATABASE"),
		User:            getenv("MARIADB_USER"),
	}
	for _, p := range strings.Split(getenv("GALERA_PEERS"), ",") {
		if p = strings.TrimSpace(p); p != "" {
			c.Peers = append(c.Peers, p)
		}
	}
	if v := getenv("GALERA_STATUS_PORT"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > 65535 {
			return c, fmt.Errorf("GALERA_STATUS_PORT=%q: want a port number", v)
		}
		c.StatusPort = n
	}
	if arbitrator {
		if !c.Galera() {
			return c, fmt.Errorf("garbd: GALERA_PEERS is empty: name the database members (e.g. GALERA_PEERS=tasks.db)")
		}
		return c, nil
	}
	if v := getenv("GALERA_SIZE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return c, fmt.Errorf("GALERA_SIZE=%q: want the number of database members (1 or more)", v)
		}
		c.Size = n
	} else if c.Galera() {
		return c, fmt.Errorf("GALERA_PEERS is set but GALERA_SIZE is not: say how many database members the cluster has (the arbitrator not counted), so that a recovery waits for all of them")
	}
	var err error
	if c.Password, err = secret(getenv, readFile, "MARIADB_PASSWORD"); err != nil {
		return c, err
	}
	if c.RootPassword, err = secret(getenv, readFile, "MARIADB_ROOT_PASSWORD"); err != nil {
		return c, err
	}
	if c.RootPassword == "" {
		c.RootPassword = c.Password
	}
	if c.User != "" && c.Password == "" {
		return c, fmt.Errorf("MARIADB_USER=%s has no password: set MARIADB_PASSWORD_FILE (a secret) or MARIADB_PASSWORD", c.User)
	}
	return c, nil
}

// secret is VAR, or the content of the file VAR_FILE names (without its final newline); not both.
func secret(getenv func(string) string, readFile func(string) ([]byte, error), name string) (string, error) {
	val, file := getenv(name), getenv(name+"_FILE")
	switch {
	case val != "" && file != "":
		return "", fmt.Errorf("both %s and %s_FILE are set: they are exclusive", name, name)
	case file != "":
		b, err := readFile(file)
		if err != nil {
			return "", fmt.Errorf("%s_FILE: %v", name, err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	return val, nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}
