// Command swarmlab-logd keeps the logs of a lab node, so that they outlive
// the containers that wrote them (and the node itself), and reads them back.
//
//	swarmlab-logd supervise [--dir D] [--node N] [--socket S] -- dockerd ARGS...
//	swarmlab-logd logs [--dir D] [--since S] [--tail N] [-f] [-t] SERVICE|NODE
//
// supervise is how the node image's entrypoint starts dockerd: as its child,
// its output copied to this process's own output (the node container's log)
// and to the node's dockerd.log, its signals forwarded; meanwhile it follows
// the engine's events and streams the output of every container the engine
// starts into the logs directory (format.go has the layout). The directory
// is the lab's logs volume, which every node of the lab mounts.
//
// logs prints a service's tasks' lines merged in time order, each prefixed
// with its task as docker service logs does, or a node's dockerd log. The
// lab runs it in a throwaway container that mounts the logs volume, so that
// it needs nothing but the engine, wherever that engine is.
//
// It is built from the standard library alone: lab/images compiles these
// files as a module of their own into the node image.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// defaultDir is where the lab mounts its logs volume in every node.
const defaultDir = "/var/log/swarmlab"

const usage = `usage:
  swarmlab-logd supervise [--dir D] [--node N] [--socket S] -- COMMAND ARGS...
  swarmlab-logd logs [--dir D] [--since S] [--tail N] [-f] [-t] [--stdin-eof] SERVICE|NODE
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "swarmlab-logd: "+format+"\n", a...) }
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "supervise":
		fs := flag.NewFlagSet("supervise", flag.ContinueOnError)
		fs.SetOutput(stderr)
		dir := fs.String("dir", defaultDir, "the logs directory")
		node := fs.String("node", nodeName(), "the node's name")
		socket := fs.String("socket", "/var/run/docker.sock", "the engine's socket")
		if err := fs.Parse(args[1:]); err != nil {
			return 2
		}
		// supervise takes the signals itself, to forward them.
		signal.Reset(syscall.SIGTERM, syscall.SIGINT)
		return supervise(fs.Args(), superviseOptions{dir: *dir, node: *node, socket: *socket, stdout: stdout, stderr: stderr, logf: logf})
	case "logs":
		fs := flag.NewFlagSet("logs", flag.ContinueOnError)
		fs.SetOutput(stderr)
		o := readOptions{stdout: stdout, stderr: stderr}
		fs.StringVar(&o.dir, "dir", defaultDir, "the logs directory")
		since := fs.String("since", "", "only lines from then on: a duration back from now (10m), a time (RFC 3339) or Unix seconds")
		fs.IntVar(&o.tail, "tail", -1, "only the last N lines (-1: all)")
		fs.BoolVar(&o.follow, "f", false, "print new lines as they come, until stopped")
		fs.BoolVar(&o.follow, "follow", false, "same as -f")
		fs.BoolVar(&o.timestamps, "t", false, "print each line's time")
		fs.BoolVar(&o.timestamps, "timestamps", false, "same as -t")
		fs.DurationVar(&o.poll, "poll", 250*time.Millisecond, "how often followed files are read")
		stdinEOF := fs.Bool("stdin-eof", false, "stop when stdin ends (the lab attaches it, so that a reader whose client went away stops)")
		if err := fs.Parse(args[1:]); err != nil {
			return 2
		}
		if fs.NArg() != 1 {
			logf("logs needs one SERVICE or NODE")
			return 2
		}
		o.target = fs.Arg(0)
		var err error
		if o.since, err = parseSince(*since, time.Now()); err != nil {
			logf("%v", err)
			return 2
		}
		if *stdinEOF && stdin != nil {
			var cancel context.CancelFunc
			ctx, cancel = context.WithCancel(ctx)
			defer cancel()
			go func() { io.Copy(io.Discard, stdin); cancel() }()
		}
		if err := readLogs(ctx, o); err != nil {
			logf("%v", err)
			return 1
		}
		return 0
	default:
		fmt.Fprintf(stderr, "swarmlab-logd: unknown command %q\n%s", args[0], usage)
		return 2
	}
}

// nodeName is the node's name: $SWARMLAB_NODE, else the host name (the lab
// sets a node container's host name to the node's name).
func nodeName() string {
	if n := os.Getenv("SWARMLAB_NODE"); n != "" {
		return n
	}
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "node"
	}
	return h
}
