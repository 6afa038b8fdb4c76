package loadgen

import (
	"context"
	"fmt"
	"time"
)

// poll runs check every interval until it reports done, timeout passes or
// ctx ends. Like the lab's waits, its error says what it waited for and
// what check last saw, never just "timed out". (loadgen is product code:
// it keeps this small loop rather than depend on the lab.)
func poll(ctx context.Context, what string, timeout, interval time.Duration, check func(context.Context) (seen string, done bool)) error {
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := "nothing (no check completed)"
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-tctx.Done():
			if ctx.Err() != nil {
				return fmt.Errorf("waiting for %s (last seen: %s): %w", what, last, ctx.Err())
			}
			return fmt.Errorf("timed out after %s waiting for %s; last seen: %s", timeout, what, last)
		case <-t.C:
		}
		seen, done := check(tctx)
		if seen != "" {
			last = seen
		}
		if done {
			return nil
		}
		t.Reset(interval)
	}
}
