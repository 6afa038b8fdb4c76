package wait

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestForReturnsWhenDone(t *testing.T) {
	n := 0
	seen, err := For(context.Background(), "three ticks", time.Second, time.Millisecond, func(context.Context) Result {
		n++
		if n == 3 {
			return Done("tick 3")
		}
		return Continue("tick %d", n)
	})
	if err != nil || seen != "tick 3" {
		t.Fatalf("got %q, %v", seen, err)
	}
}

func TestForTimeoutQuotesLastObservation(t *testing.T) {
	_, err := For(context.Background(), "node w1 Ready", 20*time.Millisecond, time.Millisecond, func(context.Context) Result {
		return Continue("w1 is down")
	})
	if !IsTimeout(err) {
		t.Fatalf("want a timeout, got %v", err)
	}
	for _, want := range []string{"node w1 Ready", "last seen: w1 is down"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestForStopsOnFail(t *testing.T) {
	boom := errors.New("boom")
	_, err := For(context.Background(), "x", time.Second, time.Millisecond, func(context.Context) Result { return Fail(boom) })
	if !errors.Is(err, boom) || IsTimeout(err) {
		t.Fatalf("want boom, got %v", err)
	}
}

func TestForHonoursCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := For(ctx, "x", time.Second, time.Millisecond, func(context.Context) Result { return Continue("waiting") })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("want canceled, got %v", err)
	}
}
