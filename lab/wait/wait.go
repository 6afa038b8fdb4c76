// Package wait polls a condition until it holds, and on timeout says what it
// was waiting for and what it last saw — never just "timed out".
//
// A check reports the state it observed; the poller keeps the latest report
// so the timeout error can quote it. This mirrors moby's poll.WaitOn.
package wait

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Result is what one check observed.
type Result struct {
	done bool
	seen string
	err  error
}

// Done ends the wait successfully; seen describes the final state.
func Done(seen string) Result { return Result{done: true, seen: seen} }

// Continue keeps waiting; seen describes what the check observed this time.
func Continue(format string, args ...any) Result {
	return Result{seen: fmt.Sprintf(format, args...)}
}

// Fail ends the wait with an error that no amount of waiting will fix.
func Fail(err error) Result { return Result{err: err} }

// Check observes the system once.
type Check func(ctx context.Context) Result

// TimeoutError is returned when the condition did not hold in time.
type TimeoutError struct {
	What    string
	Timeout time.Duration
	Seen    string
}

func (e *TimeoutError) Error() string {
	seen := e.Seen
	if seen == "" {
		seen = "nothing (no check completed)"
	}
	return fmt.Sprintf("timed out after %s waiting for %s; last seen: %s", e.Timeout, e.What, seen)
}

// For polls check every interval until it reports Done, reports Fail, the
// timeout passes, or ctx ends. what names the condition ("3 nodes Ready").
// It returns the last observation on success.
//
// Checks start every interval (a check that takes part of the interval does
// not stretch it); one that takes longer is followed by the next after
// interval/5, so a slow check is not run back to back.
func For(ctx context.Context, what string, timeout, interval time.Duration, check Check) (string, error) {
	deadline := time.Now().Add(timeout)
	tctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	var last string
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for {
		began := time.Now()
		r := check(tctx)
		if r.seen != "" {
			last = r.seen
		}
		switch {
		case r.err != nil:
			return last, fmt.Errorf("waiting for %s: %w", what, r.err)
		case r.done:
			return last, nil
		}
		timer.Reset(max(interval-time.Since(began), interval/5))
		select {
		case <-tctx.Done():
			if ctx.Err() != nil {
				return last, fmt.Errorf("waiting for %s (last seen: %s): %w", what, last, ctx.Err())
			}
			return last, &TimeoutError{What: what, Timeout: timeout, Seen: last}
		case <-timer.C:
		}
	}
}

// IsTimeout reports whether err is a wait timeout.
func IsTimeout(err error) bool {
	var t *TimeoutError
	return errors.As(err, &t)
}
