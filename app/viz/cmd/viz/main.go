// Command viz is the swarm visualizer: a live page of the swarm's nodes and
// the tasks each runs, read from the Docker engine of the manager it runs on
// (its socket mounted into the container). It only reads: its HTTP API is
// its own model, never the engine's.
package main

import (
	"context"
	"flag"
	"log"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/moby/moby/client"

	"github.com/swarmlab/swarmlab/app/internal/svc"
	"github.com/swarmlab/swarmlab/app/viz/internal/server"
)

func main() {
	listen := flag.String("listen", envOr("LISTEN_ADDR", ":8080"), "HTTP listen address (env LISTEN_ADDR)")
	resync := flag.Duration("resync", 5*time.Second, "full re-read interval while the event stream works")
	poll := flag.Duration("poll", time.Second, "re-read interval while the event stream is down")
	healthcheck := flag.Bool("healthcheck", false, "probe /healthz on the listen address and exit 0 if healthy")
	flag.Parse()
	if *healthcheck {
		os.Exit(svc.Healthcheck(*listen))
	}

	ctx, stop := svc.SignalContext()
	defer stop()
	// DOCKER_HOST is honoured; by default the mounted /var/run/docker.sock.
	cli, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		log.Fatalf("docker client: %v", err)
	}
	defer cli.Close()

	w := server.NewWatcher(cli, server.Config{Resync: *resync, Poll: *poll, Logf: log.Printf})
	go w.Run(ctx)
	srv := &http.Server{
		Addr: *listen, Handler: server.Handler(w),
		ReadHeaderTimeout: 5 * time.Second, MaxHeaderBytes: 16 << 10,
		// Event streams end when we are told to stop, so shutdown need not
		// wait for them.
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	log.Printf("viz: listening on %s, engine %s", *listen, cli.DaemonHost())
	if err := svc.Serve(ctx, srv); err != nil {
		log.Fatal(err)
	}
	log.Print("viz: stopped")
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
