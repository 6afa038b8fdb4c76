package loadgen

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestPollSaysWhatItWaitedForAndLastSaw(t *testing.T) {
	n := 0
	err := poll(context.Background(), "three tries", time.Second, time.Millisecond, func(context.Context) (string, bool) {
		n++
		return fmt.Sprintf("try %d", n), n == 3
	})
	if err != nil || n != 3 {
		t.Fatalf("poll: %v after %d tries, want done after 3", err, n)
	}

	err = poll(context.Background(), "the tally", 20*time.Millisecond, time.Millisecond, func(context.Context) (string, bool) {
		return "HTTP 503: no server available", false
	})
	if err == nil || !strings.Contains(err.Error(), "timed out after 20ms waiting for the tally; last seen: HTTP 503: no server available") {
		t.Errorf("timeout: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = poll(ctx, "the tally", time.Second, time.Millisecond, func(context.Context) (string, bool) { return "", false })
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "waiting for the tally") {
		t.Errorf("cancelled: %v", err)
	}
}
