package lab

import (
	"os"
	"os/signal"
	"syscall"
)

// installSignalHandler removes tracked labs on SIGINT or SIGTERM, then exits
// as the signal would have (130 / 143).
func installSignalHandler() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-ch
		interrupted.Store(true)
		sweepLive(s.String())
		code := 130
		if s == syscall.SIGTERM {
			code = 143
		}
		os.Exit(code)
	}()
}
