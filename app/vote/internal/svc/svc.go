// Package svc holds the few lines every vote program's main needs: signal
// handling, graceful HTTP serving, a container health probe, and the
// Postgres options shared by worker and results.
package svc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/swarmlab/swarmlab/app/vote/internal/env"
	"github.com/swarmlab/swarmlab/app/vote/internal/store"
)

// SignalContext is cancelled on SIGINT or SIGTERM (docker stop).
func SignalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// Serve runs srv until ctx is done, then lets in-flight requests finish.
func Serve(ctx context.Context, srv *http.Server) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Healthcheck probes /healthz on our own listen address and returns an exit
// code. Images are FROM scratch, so the binary is its own health-check tool.
func Healthcheck(listen string) int {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get("http://" + net.JoinHostPort(host, port) + "/healthz")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, resp.Status)
		return 1
	}
	return 0
}

// RedisOptions accepts host:port, or a URL: redis://host:port/0, or
// unix:///path/redis.sock for a Redis sharing a volume with us.
func RedisOptions(addr string) (*redis.Options, error) {
	if strings.Contains(addr, "://") {
		return redis.ParseURL(addr)
	}
	return &redis.Options{Addr: addr}, nil
}

// PostgresFlags registers the Postgres options; call the result after flag.Parse.
func PostgresFlags() func() store.Config {
	host := env.String("pg-host", "POSTGRES_HOST", "db", "Postgres host")
	port := env.Int("pg-port", "POSTGRES_PORT", 5432, "Postgres port")
	user := env.String("pg-user", "POSTGRES_USER", "postgres", "Postgres user")
	db := env.String("pg-db", "POSTGRES_DB", "postgres", "Postgres database")
	ssl := env.String("pg-sslmode", "POSTGRES_SSLMODE", "disable", "Postgres sslmode")
	pw := env.String("pg-password-file", "POSTGRES_PASSWORD_FILE", "", "file holding the Postgres password (a swarm secret)")
	return func() store.Config {
		return store.Config{Host: *host, Port: *port, User: *user, Database: *db, SSLMode: *ssl, PasswordFile: *pw}
	}
}
