package lab

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestEachAtOnce(t *testing.T) {
	var running, most atomic.Int32
	err := eachAtOnce(context.Background(), 6, 2, func(i int) error {
		now := running.Add(1)
		for {
			m := most.Load()
			if now <= m || most.CompareAndSwap(m, now) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		running.Add(-1)
		if i == 1 || i == 4 {
			return errors.New("fail " + string(rune('0'+i)))
		}
		return nil
	})
	if most.Load() != 2 {
		t.Errorf("at most %d ran at once, want the limit, 2", most.Load())
	}
	if err == nil || !strings.Contains(err.Error(), "fail 1") || !strings.Contains(err.Error(), "fail 4") {
		t.Errorf("err = %v, want both failures joined", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var calls atomic.Int32
	err = eachAtOnce(ctx, 3, 1, func(int) error { calls.Add(1); return nil })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("after cancel: err = %v, want context.Canceled", err)
	}
	if calls.Load() == 3 {
		t.Errorf("every call was made after the context ended")
	}
}
