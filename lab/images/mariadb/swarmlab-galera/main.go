// swarmlab-galera is the entry point of swarmlab/mariadb: Debian's MariaDB server as a member of
// a Galera cluster in a swarm, or the cluster's arbitrator, or a standalone server.
//
//	swarmlab-galera [mariadbd [OPTION...]]   the server (the image's command)
//	swarmlab-galera garbd [OPTION...]        the arbitrator (galera-arbitrator-4)
//	swarmlab-galera health                   exit 0 when the server is healthy (also as swarmlab-galera-health)
//	swarmlab-galera OTHER...                 runs OTHER
//
// The environment (config.go): GALERA_PEERS, GALERA_SIZE, GALERA_CLUSTER_NAME,
// GALERA_NODE_NAME, GALERA_NODE_ADDRESS, GALERA_BOOTSTRAP_NODE, GALERA_PROVIDER_OPTIONS,
// GALERA_STATUS_PORT; MARIADB_ROOT_PASSWORD[_FILE], MARIADB_DATABASE, MARIADB_USER,
// MARIADB_PASSWORD[_FILE]. Where each part of a Galera member's life is handled:
//   - bootstrap of a new cluster, rejoin after a kill, recovery after all were down: decide.go
//     (the rules) and runServer in server.go (what each decision starts);
//   - the position of this member's data (grastate.dat, --wsrep-recover): grastate.go, ownState;
//   - the peers, by DNS: peers.go; their positions, asked on the status port: status.go;
//   - the accounts, made idempotently: accountsSQL in sql.go;
//   - the arbitrator: garbd.go; the health check: health below.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

func main() {
	args := os.Args[1:]
	if filepath.Base(os.Args[0]) == "swarmlab-galera-health" || (len(args) > 0 && args[0] == "health") {
		os.Exit(health())
	}
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		// `docker run IMAGE --max-connections=500`
		args = append([]string{"mariadbd"}, args...)
	}
	var err error
	switch args[0] {
	case "mariadbd", "mysqld":
		var c Config
		if c, err = configFrom(os.Getenv, os.ReadFile, hostname(), false); err == nil {
			err = runServer(context.Background(), c, args)
		}
	case "garbd":
		var c Config
		if c, err = configFrom(os.Getenv, os.ReadFile, hostname(), true); err == nil {
			err = runArbitrator(context.Background(), c, args)
		}
	default:
		path, lerr := exec.LookPath(args[0])
		if lerr != nil {
			err = lerr
			break
		}
		err = syscall.Exec(path, args, os.Environ())
	}
	var code exitCode
	if errors.As(err, &code) {
		os.Exit(int(code))
	}
	if err != nil {
		logf("%v", err)
		os.Exit(1)
	}
}

// health is the container's health check: a Galera member is healthy when it is Synced in the
// primary component (wsrep_ready=ON, wsrep_local_state=4); a standalone server, when it answers.
func health() int {
	ctx := context.Background()
	if os.Getenv("GALERA_PEERS") == "" {
		if _, err := query(ctx, "SELECT 1;"); err != nil {
			fmt.Println(err)
			return 1
		}
		return 0
	}
	st, err := wsrepStatus(ctx)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	ok, say := synced(st)
	fmt.Println(say)
	if !ok {
		return 1
	}
	return 0
}
