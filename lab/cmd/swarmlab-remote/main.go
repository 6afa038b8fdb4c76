// Command swarmlab-remote starts and removes a Docker engine that runs in a
// container (lab/remoteengine): an engine this machine reaches only at its
// own address, as it would a remote build box, a CI job's docker:dind
// sidecar or Docker Desktop's VM. scripts/e2e-remote runs the e2e suite
// against it.
//
//	swarmlab-remote up -name e2e     # prints DOCKER_HOST=tcp://<address>:2375
//	swarmlab-remote down -name e2e
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/swarmlab/swarmlab/lab/internal/engine"
	"github.com/swarmlab/swarmlab/lab/remoteengine"
)

func main() {
	if len(os.Args) < 2 || (os.Args[1] != "up" && os.Args[1] != "down") {
		fmt.Fprintln(os.Stderr, "usage: swarmlab-remote up|down [-name NAME]")
		os.Exit(2)
	}
	verb := os.Args[1]
	fs := flag.NewFlagSet(verb, flag.ExitOnError)
	name := fs.String("name", "remote", "the engine's container is swarmlab-remote-NAME")
	fs.Parse(os.Args[2:])

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	host, err := engine.FromEnv()
	if err != nil {
		fail(err)
	}
	defer host.Close()
	switch verb {
	case "up":
		e, err := remoteengine.Start(ctx, host, *name, func(f string, a ...any) {
			fmt.Fprintf(os.Stderr, "swarmlab-remote: "+f+"\n", a...)
		})
		if err != nil {
			fail(err)
		}
		fmt.Println("DOCKER_HOST=" + e.DockerHost)
	case "down":
		if err := remoteengine.Remove(ctx, host, *name); err != nil {
			fail(err)
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "swarmlab-remote:", err)
	os.Exit(1)
}
