package lab

import (
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"
	"time"
)

// interruptHooks run when a signal arrives, before the tracked labs are
// swept.
var interruptHooks struct {
	sync.Mutex
	fns []func(os.Signal)
}

// hookTimeout bounds how long the hooks may delay the sweep.
var hookTimeout = 10 * time.Second

// OnInterrupt registers fn to run when SIGINT or SIGTERM ends the process,
// before the signal handler removes the ephemeral labs and exits: a test
// suite uses it to write down what it measured so far. Hooks run in order,
// together bounded by 10 s; fn must not start anything that needs the labs.
func OnInterrupt(fn func(os.Signal)) {
	interruptHooks.Lock()
	defer interruptHooks.Unlock()
	interruptHooks.fns = append(interruptHooks.fns, fn)
}

func runInterruptHooks(s os.Signal) {
	interruptHooks.Lock()
	fns := slices.Clone(interruptHooks.fns)
	interruptHooks.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, fn := range fns {
			fn(s)
		}
	}()
	select {
	case <-done:
	case <-time.After(hookTimeout):
	}
}

// installSignalHandler removes tracked labs on SIGINT or SIGTERM, then exits
// as the signal would have (130 / 143).
func installSignalHandler() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-ch
		interrupted.Store(true)
		runInterruptHooks(s)
		sweepLive(s.String())
		code := 130
		if s == syscall.SIGTERM {
			code = 143
		}
		os.Exit(code)
	}()
}
