// Command storage is the crud app's storage service: the only program that
// talks to the database (MariaDB/Galera). See app/crud/README.md.
package main

import (
	"context"
	"flag"
	"log"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/swarmlab/swarmlab/app/crud/internal/reqlog"
	"github.com/swarmlab/swarmlab/app/crud/internal/storage"
	"github.com/swarmlab/swarmlab/app/internal/env"
	"github.com/swarmlab/swarmlab/app/internal/svc"
)

func main() {
	listen := env.String("listen", "LISTEN_ADDR", ":8080", "HTTP listen address")
	task := env.String("task", "TASK_NAME", env.Hostname(), "this task's name, sent as X-Served-By (the stack sets {{.Task.Name}})")
	addrs := env.String("db", "CRUD_DB_ADDRS", "tasks.db:3306", "database nodes, comma-separated host:port; each host is resolved again at every new connection")
	user := env.String("db-user", "CRUD_DB_USER", "crud", "database user")
	dbName := env.String("db-name", "CRUD_DB_NAME", "crud", "database (it must exist; the items table is created if missing)")
	pwFile := env.String("db-password-file", "CRUD_DB_PASSWORD_FILE", "", "file holding the database password (a swarm secret)")
	causal := env.Bool("causal-reads", "CRUD_CAUSAL_READS", true, "wsrep_sync_wait=1 on every connection: a read sees every write acknowledged before it (0 = off, for the checker's broken run)")
	maxConns := env.Int("db-max-conns", "CRUD_DB_MAX_CONNS", 16, "most open database connections")
	attempts := env.Int("db-attempts", "CRUD_DB_ATTEMPTS", 5, "tries of one operation, each on another connection and most often another node")
	attemptTimeout := env.Duration("db-attempt-timeout", "CRUD_DB_ATTEMPT_TIMEOUT", 3*time.Second, "time one try may take")
	downFor := env.Duration("db-down-for", "CRUD_DB_DOWN_FOR", 5*time.Second, "how long a node that failed is tried after the others")
	healthcheck := flag.Bool("healthcheck", false, "probe /healthz on the listen address and exit 0 if healthy")
	flag.Parse()
	if *healthcheck {
		os.Exit(svc.Healthcheck(*listen))
	}

	var password string
	if *pwFile != "" {
		b, err := os.ReadFile(*pwFile)
		if err != nil {
			log.Fatalf("CRUD_DB_PASSWORD_FILE: %v", err)
		}
		password = strings.TrimRight(string(b), "\r\n")
	}
	st, err := storage.Open(storage.Config{
		Addrs: env.List(*addrs), User: *user, Password: password, Database: *dbName,
		CausalReads: *causal, MaxConns: *maxConns, Attempts: *attempts,
		AttemptTimeout: *attemptTimeout, DownFor: *downFor,
	})
	if err != nil {
		log.Fatalf("CRUD_DB_ADDRS: %v", err)
	}
	defer st.Close()

	ctx, stop := svc.SignalContext()
	defer stop()
	migrate(ctx, st, *addrs)

	s := &storage.Server{Store: st, Task: *task, Timeout: time.Duration(*attempts+1) * *attemptTimeout,
		Health: func() map[string]any {
			return map[string]any{"causal_reads": *causal, "db_nodes": st.Nodes()}
		}}
	srv := &http.Server{Addr: *listen, Handler: s.Handler(reqlog.New(os.Stdout, "storage", *task)),
		ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 2 * time.Minute}
	log.Printf("storage %s: listening on %s, database %s, causal reads %v", *task, *listen, *addrs, *causal)
	if err := svc.Serve(ctx, srv); err != nil {
		log.Fatal(err)
	}
}

// migrate creates the items table, waiting for the database as long as it
// takes: storage serves nothing without it.
func migrate(ctx context.Context, st *storage.SQL, addrs string) {
	wait := 200 * time.Millisecond
	for {
		mctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := st.Migrate(mctx)
		cancel()
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			os.Exit(1)
		}
		log.Printf("database %s: %v (retrying in %v)", addrs, err, wait)
		time.Sleep(wait)
		wait = min(2*wait, 5*time.Second)
	}
}
