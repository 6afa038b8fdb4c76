// Command viz is the swarm visualizer: a live page of the swarm's nodes and
// the tasks each runs, read from the Docker engine of the manager it runs on
// (its socket mounted into the container). It only reads: its HTTP API is
// its own model, never the engine's.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/moby/moby/client"

	"github.com/swarmlab/swarmlab/app/viz/internal/server"
)

func main() {
	listen := flag.String("listen", envOr("LISTEN_ADDR", ":8080"), "HTTP listen address (env LISTEN_ADDR)")
	resync := flag.Duration("resync", 5*time.Second, "full re-read interval while the event stream works")
	poll := flag.Duration("poll", time.Second, "re-read interval while the event stream is down")
	healthcheck := flag.Bool("healthcheck", false, "probe /healthz on the listen address and exit 0 if healthy")
	flag.Parse()
	if *healthcheck {
		os.Exit(probe(*listen))
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// DOCKER_HOST is honoured; by default the mounted /var/run/docker.sock.
	cli, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		log.Fatalf("docker client: %v", err)
	}
	defer cli.Close()

	w := server.NewWatcher(cli, server.Config{Resync: *resync, Poll: *poll, Logf: log.Printf})
	go w.Run(ctx)
	srv := &http.Server{Addr: *listen, Handler: server.Handler(w), ReadHeaderTimeout: 5 * time.Second, MaxHeaderBytes: 16 << 10}
	log.Printf("viz: listening on %s, engine %s", *listen, cli.DaemonHost())
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		log.Fatal(err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Event streams never end by themselves: close them rather than wait.
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		log.Print(err)
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// probe asks our own /healthz. The image is FROM scratch, so the binary is
// its own health-check tool.
func probe(listen string) int {
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
