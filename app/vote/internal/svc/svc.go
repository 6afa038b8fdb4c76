// Package svc holds the few lines every vote program's main needs: signal
// handling, graceful HTTP serving, a container health probe, and the
// Postgres options shared by worker and results.
package svc

import (
	"strings"

	"github.com/redis/go-redis/v9"

	appsvc "github.com/swarmlab/swarmlab/app/internal/svc"
	"github.com/swarmlab/swarmlab/app/vote/internal/env"
	"github.com/swarmlab/swarmlab/app/vote/internal/store"
)

// The generic parts live in app/internal/svc, shared by every app.
var (
	// SignalContext is cancelled on SIGINT or SIGTERM (docker stop).
	SignalContext = appsvc.SignalContext
	// Serve runs an HTTP server until ctx is done, then lets in-flight
	// requests finish.
	Serve = appsvc.Serve
	// Healthcheck probes /healthz on our own listen address and returns an
	// exit code.
	Healthcheck = appsvc.Healthcheck
)

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
