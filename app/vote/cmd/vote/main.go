// Command vote is the vote web service of one frontend node. It answers 2xx
// only once the vote is fsynced in that node's Redis.
package main

import (
	"context"
	"flag"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/swarmlab/swarmlab/app/vote/internal/env"
	"github.com/swarmlab/swarmlab/app/vote/internal/frontend"
	"github.com/swarmlab/swarmlab/app/vote/internal/svc"
)

func main() {
	listen := env.String("listen", "LISTEN_ADDR", ":8080", "HTTP listen address")
	redisAddr := env.String("redis", "REDIS_ADDR", "redis:6379", "this frontend's Redis: host:port, redis://host:port or unix:///path/redis.sock")
	optA := env.String("option-a", "OPTION_A", "Cats", "name of option a")
	optB := env.String("option-b", "OPTION_B", "Dogs", "name of option b")
	node := env.String("node", "NODE_NAME", env.Hostname(), "frontend name shown on the page")
	batchMax := env.Int("batch-max", "BATCH_MAX", 128, "most votes per Redis write")
	linger := env.Duration("batch-linger", "BATCH_LINGER", time.Millisecond, "how long a write waits for more votes to share it; 0 = not at all")
	flushers := env.Int("batch-flushers", "BATCH_FLUSHERS", 8, "Redis writes in flight at once")
	volatile := env.Bool("allow-volatile-redis", "ALLOW_VOLATILE_REDIS", false, "start even if Redis does not fsync every write (acknowledged votes could be lost)")
	healthcheck := flag.Bool("healthcheck", false, "probe /healthz on the listen address and exit 0 if healthy")
	flag.Parse()
	if *healthcheck {
		os.Exit(svc.Healthcheck(*listen))
	}

	ctx, stop := svc.SignalContext()
	defer stop()
	opts, err := svc.RedisOptions(*redisAddr)
	if err != nil {
		log.Fatalf("REDIS_ADDR: %v", err)
	}
	opts.PoolSize, opts.DialTimeout = 2**flushers+4, 2*time.Second
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	waitForRedis(ctx, rdb, *redisAddr, *volatile)

	// The batcher outlives the HTTP server: votes in flight at shutdown still
	// get their answer.
	bctx, stopBatcher := context.WithCancel(context.Background())
	b := frontend.NewBatcher(bctx, frontend.RedisSink{Client: rdb}, frontend.BatcherConfig{
		Max: *batchMax, Linger: *linger, Flushers: *flushers,
	})
	s := frontend.NewServer(b, frontend.Config{
		OptionA: *optA, OptionB: *optB, Node: *node,
		Ping: func(ctx context.Context) error { return rdb.Ping(ctx).Err() },
	})
	srv := &http.Server{Addr: *listen, Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 16 << 10}
	log.Printf("vote %s: listening on %s, redis %s", *node, *listen, *redisAddr)
	err = svc.Serve(ctx, srv)
	stopBatcher()
	b.Wait()
	if err != nil {
		log.Fatal(err)
	}
}

// waitForRedis blocks until Redis answers, then refuses to go on if it would
// acknowledge writes it has not fsynced.
func waitForRedis(ctx context.Context, rdb *redis.Client, addr string, volatile bool) {
	wait := 100 * time.Millisecond
	for {
		err := rdb.Ping(ctx).Err()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			os.Exit(1)
		}
		log.Printf("redis %s: %v (retrying in %v)", addr, err, wait)
		time.Sleep(wait)
		wait = min(2*wait, 5*time.Second)
	}
	ok, err := frontend.CheckDurable(ctx, rdb)
	switch {
	case err != nil && !volatile:
		log.Fatalf("%v; set ALLOW_VOLATILE_REDIS=true to run anyway", err)
	case err != nil:
		log.Printf("WARNING: %v", err)
	case !ok:
		log.Printf("WARNING: cannot read Redis config; make sure it runs with appendonly yes, appendfsync always")
	}
}
