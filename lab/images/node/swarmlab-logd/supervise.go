package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// forwarded are the signals supervise passes on to its command: docker
// stop's SIGTERM, SIGHUP (dockerd reloads daemon.json), and the others a
// process manager may send.
var forwarded = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2}

// drainWait bounds how long supervise waits, once its command has exited,
// for the rest of the command's output: processes the command started
// (containerd) may hold its output open.
const drainWait = 2 * time.Second

type superviseOptions struct {
	dir    string // the logs directory; "" or missing: nothing is kept
	node   string
	socket string // the engine the collector follows; "": none
	stdout io.Writer
	stderr io.Writer
	logf   func(format string, args ...any)
}

// supervise runs cmd (dockerd and its arguments) as its child and returns
// its exit code (128+N if a signal N ended it). The command's output goes
// to supervise's own output as it comes and, line by line with the time,
// to nodes/<node>/dockerd.log under the logs directory; meanwhile a
// collector follows the engine at socket. Without a logs directory (the
// image run outside a lab), the command only runs. Nothing the collector
// meets stops the command.
func supervise(cmdline []string, o superviseOptions) int {
	if len(cmdline) == 0 {
		o.logf("supervise: no command to run")
		return 2
	}
	var lf *logFile
	if st, err := os.Stat(o.dir); o.dir != "" && err == nil && st.IsDir() {
		lf, err = openLog(filepath.Join(o.dir, nodesDir, safeName(o.node), dockerdLog))
		if err != nil {
			o.logf("not keeping the output of %s: %v", cmdline[0], err)
		} else {
			defer lf.Close()
		}
	} else if o.dir != "" {
		o.logf("no logs directory %s: %s's output is not kept", o.dir, cmdline[0])
	}

	outR, outW, err := os.Pipe()
	if err != nil {
		o.logf("%v", err)
		return 1
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		o.logf("%v", err)
		return 1
	}
	cmd := exec.Command(cmdline[0], cmdline[1:]...)
	cmd.Stdout, cmd.Stderr = outW, errW
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, forwarded...)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		o.logf("starting %s: %v", cmdline[0], err)
		return 127
	}
	outW.Close()
	errW.Close()

	var copying sync.WaitGroup
	copying.Add(2)
	go func() { defer copying.Done(); copyLines(outR, o.stdout, lf, "stdout") }()
	go func() { defer copying.Done(); copyLines(errR, o.stderr, lf, "stderr") }()

	ctx, stopCollector := context.WithCancel(context.Background())
	collected := make(chan struct{})
	if lf != nil && o.socket != "" {
		go func() {
			defer close(collected)
			defer func() {
				if r := recover(); r != nil {
					o.logf("collector stopped: %v", r)
				}
			}()
			newCollector(unixEngine(o.socket), o.dir, o.node, o.logf).Run(ctx)
		}()
	} else {
		close(collected)
	}

	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var werr error
wait:
	for {
		select {
		case s := <-sigs:
			cmd.Process.Signal(s)
		case werr = <-exited:
			break wait
		}
	}
	stopCollector()
	drained := make(chan struct{})
	go func() { copying.Wait(); close(drained) }()
	timer := time.NewTimer(drainWait)
	select {
	case <-drained:
	case <-timer.C:
		outR.Close()
		errR.Close()
	}
	select {
	case <-collected:
	case <-time.After(drainWait):
	}
	return exitCode(werr)
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	fmt.Fprintln(os.Stderr, err)
	return 1
}
