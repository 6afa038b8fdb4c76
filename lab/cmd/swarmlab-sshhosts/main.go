// Command swarmlab-sshhosts starts and removes containers that stand in for
// hosts of your own, to try or test the ssh provider on one machine (see
// lab/provider/ssh/sshhosts and docs/remote.md).
//
//	swarmlab-sshhosts up -name ssh-e2e -dir .cache/sshhosts/ssh-e2e -mirror haproxy
//	swarmlab-sshhosts down -name ssh-e2e
//
// up prints the path of the ssh topology it wrote; bring it up with
// `swarmlab up <path>`, or run the e2e suite on it with
// SWARMLAB_TOPOLOGY=<path> go test -tags e2e ./e2e.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/swarmlab/swarmlab/lab"
	"github.com/swarmlab/swarmlab/lab/provider/ssh/sshhosts"
)

func main() {
	if len(os.Args) < 2 || (os.Args[1] != "up" && os.Args[1] != "down") {
		fmt.Fprintln(os.Stderr, "usage: swarmlab-sshhosts up|down -name NAME [-dir DIR] [-workers N] [-managers N] [-mirror haproxy,redis] [-require failover,drain]")
		os.Exit(2)
	}
	verb := os.Args[1]
	fs := flag.NewFlagSet(verb, flag.ExitOnError)
	name := fs.String("name", "ssh-hosts", "prefix of the hosts' containers: swarmlab-NAME-<node>")
	dir := fs.String("dir", "", "where the key, known_hosts and topology go (default .cache/sshhosts/NAME)")
	managers := fs.Int("managers", 1, "number of manager hosts (m1, m2...)")
	workers := fs.Int("workers", 2, "number of worker hosts (w1, w2...)")
	mirror := fs.String("mirror", "", "comma-separated standard images (haproxy, redis, nginx, postgres) the hosts get as docker.io names")
	require := fs.String("require", "", "comma-separated e2e labels the written topology requires (e2e.require)")
	fs.Parse(os.Args[2:])

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	host, err := lab.Host(ctx)
	if err != nil {
		fail(err)
	}
	if verb == "down" {
		if err := sshhosts.Remove(ctx, host, *name); err != nil {
			fail(err)
		}
		return
	}
	if *dir == "" {
		*dir = ".cache/sshhosts/" + *name
	}
	opts := sshhosts.Options{Name: *name, Dir: *dir}
	for i := 1; i <= *managers; i++ {
		opts.Nodes = append(opts.Nodes, sshhosts.Node{Name: fmt.Sprintf("m%d", i), Role: "manager"})
	}
	for i := 1; i <= *workers; i++ {
		opts.Nodes = append(opts.Nodes, sshhosts.Node{Name: fmt.Sprintf("w%d", i), Role: "worker"})
	}
	if *mirror != "" {
		opts.Mirror = strings.Split(*mirror, ",")
	}
	if *require != "" {
		opts.Require = strings.Split(*require, ",")
	}
	h, err := sshhosts.Start(ctx, host, opts)
	if err != nil {
		fail(err)
	}
	fmt.Println(h.Topology)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "swarmlab-sshhosts:", err)
	os.Exit(1)
}
