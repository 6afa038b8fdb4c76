// Command swarmlab brings topologies up as multi-node Docker Swarms, breaks
// them on purpose, and tears them down.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

const usage = `swarmlab: multi-node Docker Swarm labs on one machine

Usage:
  swarmlab up [TOPOLOGY] [--name N] [--keep-on-failure]
  swarmlab down [NAME] [--purge] | --all [--purge]
  swarmlab list [--json]
  swarmlab status [NAME] [--json]
  swarmlab env [NAME] [--node NODE]
  swarmlab load IMAGE... [--name N]
  swarmlab deploy STACK.yml [--name N] [--stack S]
  swarmlab validate FILE...
  swarmlab node kill|stop|start|pause|unpause|partition|heal NODE [--name N]
  swarmlab logs [NAME] SERVICE|NODE [--since D] [--tail N] [-f] [-t]
  swarmlab logs --prune [NAME]
  swarmlab export logs [NAME] DIR
  swarmlab aws up TOPOLOGY --cidr C --key-name K [--region R] [--instance-type T]
                  [--vpc-id V --subnet-id S] [--ami A] [--user U] [--identity-file F] [--out FILE]
  swarmlab aws down TOPOLOGY [--region R]

TOPOLOGY is a file, or the name of one in topologies/ (default: swarm-3).
NAME (and --name N) may be left out when exactly one lab exists, or when
SWARMLAB_LAB names one: eval "$(swarmlab env NAME)" sets it, so later
commands use that lab.
up also writes the docker context swarmlab-NAME (docker --context
swarmlab-NAME node ls), which down removes.
list prints every lab: provider, nodes, the nodes' engine version, age.
logs prints a service's tasks' output (SERVICE with or without its stack's
prefix), merged in time order, or NODE's engine log. A docker lab keeps them
as they are written: for tasks that are gone, nodes that were killed, and
after down, until logs --prune or down --purge. export logs writes them all,
with the swarm's nodes, services and tasks, into DIR.
env prints the shell exports that point the docker CLI at the lab's manager
(the leader), or at NODE's own engine with --node.
load copies images from this machine's engine into the lab registry, so
that a stack's image: myapp:1 runs on every node; an unchanged image is
not pushed again.
deploy deploys a stack file as up deploys a topology's stacks (x-swarmlab
images and secrets, the image check), waits until it runs, and prints its
URLs; the stack is named after the file (web.yml: web; stack.yml: its
directory) unless --stack names it.
aws up creates EC2 instances for TOPOLOGY's nodes (docs/remote.md) and writes
an ssh topology for them; aws down deletes them.
`

func main() {
	os.Exit(withSignals(os.Stderr, os.Exit, func(ctx context.Context) int {
		return run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	}))
}

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmds := map[string]func(context.Context, []string, io.Writer, io.Writer) error{
		"up": cmdUp, "forward": cmdForward, "down": cmdDown, "list": cmdList, "status": cmdStatus, "env": cmdEnv,
		"load": cmdLoad, "deploy": cmdDeploy, "validate": cmdValidate, "node": cmdNode, "aws": cmdAws,
		"logs": cmdLogs, "export": cmdExport,
	}
	name, rest := args[0], args[1:]
	if name == "help" || name == "-h" || name == "--help" {
		fmt.Fprint(stdout, usage)
		return 0
	}
	cmd, ok := cmds[name]
	if !ok {
		fmt.Fprintf(stderr, "swarmlab: unknown command %q\n\n%s", name, usage)
		return 2
	}
	if err := cmd(ctx, rest, stdout, stderr); err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "swarmlab %s: %v\n\n%s", name, err, usage)
			return 2
		}
		fmt.Fprintf(stderr, "swarmlab %s: %v\n", name, err)
		return 1
	}
	return 0
}

type usageError struct{ error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// parse parses flags that may come before, between or after positional
// arguments ("node kill w2 --name x"), and returns the positionals.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usageError{err}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func atMost(pos []string, n int, what string) error {
	if len(pos) > n {
		return usagef("unexpected arguments %s (want %s)", strings.Join(pos[n:], " "), what)
	}
	return nil
}
