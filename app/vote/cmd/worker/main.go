// Command worker drains every frontend Redis into Postgres, counting each
// voter's latest vote exactly once.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"net/http"
	"os"
	"time"

	"github.com/swarmlab/swarmlab/app/vote/internal/env"
	"github.com/swarmlab/swarmlab/app/vote/internal/store"
	"github.com/swarmlab/swarmlab/app/vote/internal/svc"
	"github.com/swarmlab/swarmlab/app/vote/internal/worker"
)

func main() {
	addrs := env.String("redis", "REDIS_ADDRS", "", "comma-separated frontend Redis addresses")
	discover := env.String("discover", "REDIS_DISCOVER", "", "also drain every address this name resolves to, host:port (e.g. tasks.redis:6379)")
	discoverEvery := env.Duration("discover-interval", "DISCOVER_INTERVAL", 5*time.Second, "how often to resolve the discover name")
	// In a container the pid is always 1 and a hostname may be shared
	// (e.g. set to the node's), so add randomness to keep names unique.
	consumer := env.String("consumer", "CONSUMER_NAME", fmt.Sprintf("%s-%d-%04x", env.Hostname(), os.Getpid(), rand.Uint32()&0xffff), "consumer name, unique per worker process")
	count := env.Int("read-count", "READ_COUNT", 1000, "entries per read and per Postgres transaction")
	block := env.Duration("read-block", "READ_BLOCK", 200*time.Millisecond, "how long a read waits for new entries")
	linger := env.Duration("read-linger", "READ_LINGER", 50*time.Millisecond, "after a read that did not fill a batch, wait this long before the next (bigger batches, less Postgres work)")
	minIdle := env.Duration("claim-min-idle", "CLAIM_MIN_IDLE", 30*time.Second, "take over entries another worker has held unacknowledged this long")
	claimEvery := env.Duration("claim-interval", "CLAIM_INTERVAL", 5*time.Second, "how often to look for such entries")
	httpAddr := env.String("http", "HTTP_ADDR", ":8081", "address for /healthz (JSON stats); empty = none")
	healthcheck := flag.Bool("healthcheck", false, "probe /healthz on the HTTP address and exit 0 if healthy")
	pg := svc.PostgresFlags()
	flag.Parse()
	if *healthcheck {
		os.Exit(svc.Healthcheck(*httpAddr))
	}
	redisAddrs := env.List(*addrs)
	if len(redisAddrs) == 0 && *discover == "" {
		log.Fatal("no Redis to drain: set REDIS_ADDRS and/or REDIS_DISCOVER")
	}

	ctx, stop := svc.SignalContext()
	defer stop()
	if err := store.Init(ctx, pg(), log.Printf); err != nil {
		log.Fatal(err)
	}
	w := worker.New(worker.Config{
		Redis: redisAddrs, Discover: *discover, DiscoverEvery: *discoverEvery, Consumer: *consumer, Count: *count, Block: *block, Linger: *linger,
		ClaimMinIdle: *minIdle, ClaimEvery: *claimEvery, Postgres: pg(),
	})
	if *httpAddr != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, r *http.Request) {
			rw.Header().Set("Content-Type", "application/json")
			json.NewEncoder(rw).Encode(w.Stats())
		})
		srv := &http.Server{Addr: *httpAddr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := svc.Serve(ctx, srv); err != nil {
				log.Printf("http: %v", err)
			}
		}()
	}
	log.Printf("worker %s: draining %v, discovering %q", *consumer, redisAddrs, *discover)
	w.Run(ctx)
}
