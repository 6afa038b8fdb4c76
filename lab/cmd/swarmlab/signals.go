package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Signals are the CLI's to handle, not the lab library's: the library only
// stops when its context ends (an interrupted up removes what it made, then
// returns).

// interrupted is why a command's context ended: a signal.
type interrupted struct{ sig os.Signal }

func (e interrupted) Error() string { return "interrupted by " + signalName(e.sig) }

// signalName is "SIGINT" for Ctrl-C rather than Go's "interrupt".
func signalName(sig os.Signal) string {
	switch sig {
	case os.Interrupt:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return sig.String()
}

// exitCode is what a shell reports for a process the signal killed: 130 for
// SIGINT, 143 for SIGTERM.
func exitCode(sig os.Signal) int {
	if s, ok := sig.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return 1
}

// withSignals runs run with a context that the first SIGINT or SIGTERM
// cancels: the command stops what it is doing (an up in progress removes
// what it made) and the process then exits with the signal's code (130,
// 143) whatever the command returned. A second signal does not wait for
// that: it exits at once, through exit. (signal.NotifyContext would do for
// the first signal, but it tells neither which signal came nor of a second.)
func withSignals(stderr io.Writer, exit func(int), run func(context.Context) int) int {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(ch)
	done := make(chan struct{})
	defer close(done)
	go func() {
		var first os.Signal
		for {
			select {
			case <-done:
				return
			case s := <-ch:
				if first == nil {
					first = s
					fmt.Fprintf(stderr, "\nswarmlab: %s: stopping (a second signal exits at once)\n", interrupted{s})
					cancel(interrupted{s})
					continue
				}
				fmt.Fprintf(stderr, "\nswarmlab: %s again: exiting now; what was being removed may be left (see swarmlab status; swarmlab down NAME)\n", signalName(s))
				exit(exitCode(first))
				return
			}
		}
	}()
	code := run(ctx)
	if in := (interrupted{}); errors.As(context.Cause(ctx), &in) {
		return exitCode(in.sig)
	}
	return code
}
