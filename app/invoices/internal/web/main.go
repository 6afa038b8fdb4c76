package web

import (
	"context"
	"flag"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/redis/go-redis/v9"
)

// Flags are the options every service has.
type Flags struct {
	Listen, Redis *string
	healthcheck   *bool
}

// CommonFlags registers -listen, -redis and -healthcheck; defaults come from
// $LISTEN_ADDR and $REDIS_ADDR, which the stack file sets.
func CommonFlags(defaultRedis string) Flags {
	return Flags{
		Listen:      flag.String("listen", Env("LISTEN_ADDR", ":8080"), "HTTP listen address [$LISTEN_ADDR]"),
		Redis:       flag.String("redis", Env("REDIS_ADDR", defaultRedis), "this service's Redis, host:port or redis://host:port/0 [$REDIS_ADDR]"),
		healthcheck: flag.Bool("healthcheck", false, "probe /healthz on the listen address and exit 0 if healthy (the container health check)"),
	}
}

// Run parses the flags and, unless -healthcheck asked for a probe, serves
// the handler that build returns until SIGTERM. The Redis client re-dials
// on its own, so a service starts (and reports unhealthy) before its Redis.
func Run(f Flags, name string, info Info, build func(ctx context.Context, rdb *redis.Client) http.Handler) {
	flag.Parse()
	if *f.healthcheck {
		os.Exit(Healthcheck(*f.Listen))
	}
	opts, err := RedisOptions(*f.Redis)
	if err != nil {
		log.Fatalf("%s: -redis %q: %v", name, *f.Redis, err)
	}
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = 2*time.Second, 2*time.Second, 2*time.Second
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	ctx, stop := SignalContext()
	defer stop()
	srv := NewServer(*f.Listen, build(ctx, rdb))
	log.Printf("%s %s on %s: listening on %s, redis %s", name, info.Version, info.Host, *f.Listen, *f.Redis)
	if err := Serve(ctx, srv); err != nil {
		log.Fatal(err)
	}
}

// RedisOptions accepts host:port or a redis:// URL.
func RedisOptions(addr string) (*redis.Options, error) {
	if len(addr) > 8 && addr[:8] == "redis://" {
		return redis.ParseURL(addr)
	}
	return &redis.Options{Addr: addr}, nil
}
