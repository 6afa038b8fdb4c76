package main

import (
	"context"
	"testing"
	"time"
)

// garbd is started anew when it outlived every primary database member and one runs again; a
// single look without one does not make it orphaned.
func TestArbitrate(t *testing.T) {
	defer func(d time.Duration) { pollEvery = d }(pollEvery)
	pollEvery = time.Millisecond
	run := func(looks []bool) (stopped bool, asked int) {
		exited := make(chan error, 1)
		hasPrimary := func() bool {
			asked++
			if asked > len(looks) {
				exited <- nil // garbd ends by itself
				return true
			}
			return looks[asked-1]
		}
		arbitrate(context.Background(), exited, hasPrimary, func() { stopped = true; exited <- nil })
		return stopped, asked
	}
	if stopped, asked := run([]bool{true, false, false, true, true, false, true}); stopped || asked != 8 {
		t.Errorf("short gaps: stopped %v after %d looks, want it left running", stopped, asked)
	}
	if stopped, asked := run([]bool{true, false, false, false, true, true}); !stopped || asked != 5 {
		t.Errorf("orphaned: stopped %v after %d looks, want stopped at the 5th", stopped, asked)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	exited := make(chan error, 1)
	stopped := false
	arbitrate(ctx, exited, func() bool { return true }, func() { stopped = true; exited <- nil })
	if !stopped {
		t.Error("garbd not stopped at the end")
	}
}
