// Command swarmlab-images makes sure the lab's images exist in the Docker engine named by the
// environment (DOCKER_HOST, or the default socket), building what is missing. See lab/images.
//
//	swarmlab-images            build what is missing, one line per image
//	swarmlab-images -v         ... and show the build output
//	swarmlab-images -no-pull   never try the official standard images, build them
//	swarmlab-images -check     build nothing: list what is missing, exit 1 if anything is
//	swarmlab-images -refs      print "name ref" lines of the resolved images on stdout
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/moby/moby/client"

	"github.com/swarmlab/swarmlab/lab/images"
)

func main() {
	verbose := flag.Bool("v", false, "show the build output")
	noPull := flag.Bool("no-pull", false, "do not try to pull the official standard images")
	check := flag.Bool("check", false, "build nothing: list the missing images, exit 1 if any")
	printRefs := flag.Bool("refs", false, `print "name ref" for each image on stdout`)
	timeout := flag.Duration("pull-timeout", images.DefaultPullTimeout, "bound on each pull attempt")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: %s [flags] [image ...]\n", os.Args[0])
		flag.PrintDefaults()
	}
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *verbose, *noPull, *check, *printRefs, *timeout, flag.Args()); err != nil {
		fmt.Fprintf(os.Stderr, "images: error: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, verbose, noPull, check, printRefs bool, pullTimeout time.Duration, only []string) error {
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return fmt.Errorf("docker client: %w", err)
	}
	defer cli.Close()

	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "images: "+format+"\n", args...)
	}

	if check {
		missing, err := images.Missing(ctx, cli)
		if err != nil {
			return err
		}
		if len(missing) == 0 {
			logf("nothing missing")
			return nil
		}
		for _, img := range missing {
			logf("missing %s", img.Ref())
		}
		os.Exit(1)
	}

	opts := images.Options{Logf: logf, NoPull: noPull, PullTimeout: pullTimeout, Only: only}
	if verbose {
		opts.BuildOutput = func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, "  | "+format+"\n", args...)
		}
	}
	start := time.Now()
	refs, err := images.EnsureWith(ctx, cli, opts)
	if err != nil {
		return err
	}
	if printRefs {
		var b strings.Builder
		for _, img := range images.All() {
			if ref, ok := refs[img.Name]; ok {
				fmt.Fprintf(&b, "%s %s\n", img.Name, ref)
			}
		}
		fmt.Print(b.String())
	}
	logf("%d images ready in %s", len(refs), time.Since(start).Round(10*time.Millisecond))
	return nil
}
