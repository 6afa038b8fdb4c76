package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/swarmlab/swarmlab/lab"
)

// forwarderStart bounds the wait for a new forwarder to serve the lab.
const forwarderStart = 30 * time.Second

// cmdForward is `swarmlab forward NAME`, which `up` starts by itself for a
// docker lab (lab.Forward): it serves on 127.0.0.1, until the lab is gone,
// the ports the lab publishes, and for a lab on an engine that is not this
// machine's its node engines and registry too. Not in the usage: nobody
// needs to run it by hand.
func cmdForward(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) != 1 {
		return usagef("forward takes one lab name")
	}
	return lab.ForwardWith(ctx, args[0], labOptions(lab.Options{}), func(f string, a ...any) {
		fmt.Fprintf(stderr, "%s swarmlab forward: %s\n", time.Now().Format(time.RFC3339), fmt.Sprintf(f, a...))
	})
}

// startForwarder starts `swarmlab forward` for l in a session of its own
// (so that the terminal's Ctrl-C after up does not end it), logging to
// forward.log in the lab's state directory, and reattaches l to it once it
// serves the lab.
func startForwarder(ctx context.Context, l *lab.Lab) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("starting the forwarder: %w", err)
	}
	logPath := filepath.Join(l.State().Dir(), "forward.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("starting the forwarder: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(self, "forward", l.Name())
	cmd.Stdout, cmd.Stderr = logf, logf
	detach(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the forwarder: %w", err)
	}
	pid := cmd.Process.Pid
	cmd.Process.Release()
	deadline := time.Now().Add(forwarderStart)
	for time.Now().Before(deadline) {
		if p, ok := lab.Forwarder(l.Name()); ok && p == pid {
			return l.Reattach(ctx)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("the forwarder (pid %d) did not serve lab %s within %s (see %s)", pid, l.Name(), forwarderStart, logPath)
}
