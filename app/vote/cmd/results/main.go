// Command results shows the running tally, live.
package main

import (
	"flag"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/swarmlab/swarmlab/app/vote/internal/env"
	"github.com/swarmlab/swarmlab/app/vote/internal/results"
	"github.com/swarmlab/swarmlab/app/vote/internal/store"
	"github.com/swarmlab/swarmlab/app/vote/internal/svc"
)

func main() {
	listen := env.String("listen", "LISTEN_ADDR", ":8080", "HTTP listen address")
	optA := env.String("option-a", "OPTION_A", "Cats", "name of option a")
	optB := env.String("option-b", "OPTION_B", "Dogs", "name of option b")
	maxAge := env.Duration("cache", "RESULTS_CACHE", 100*time.Millisecond, "readers share one tally query for this long")
	every := env.Duration("stream-interval", "STREAM_INTERVAL", time.Second, "how often /api/stream looks for changes")
	healthcheck := flag.Bool("healthcheck", false, "probe /healthz on the listen address and exit 0 if healthy")
	pg := svc.PostgresFlags()
	flag.Parse()
	if *healthcheck {
		os.Exit(svc.Healthcheck(*listen))
	}

	ctx, stop := svc.SignalContext()
	defer stop()
	// The tally table must exist before the first read, even if no worker
	// has started yet.
	if err := store.Init(ctx, pg(), log.Printf); err != nil {
		log.Fatal(err)
	}
	db := results.NewDB(pg(), *maxAge)
	defer db.Close()
	s := &results.Server{Src: db, OptionA: *optA, OptionB: *optB, Every: *every}
	// No WriteTimeout: /api/stream responses stay open.
	srv := &http.Server{Addr: *listen, Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
	log.Printf("results: listening on %s", *listen)
	if err := svc.Serve(ctx, srv); err != nil {
		log.Fatal(err)
	}
}
