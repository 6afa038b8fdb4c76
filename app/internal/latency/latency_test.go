package latency

import (
	"testing"
	"time"
)

func TestMs(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	if got := Ms(d, 0.50); got != 51 {
		t.Errorf("p50 of 1..100 ms = %v, want 51", got)
	}
	if got := Ms(d, 0.99); got != 100 {
		t.Errorf("p99 of 1..100 ms = %v, want 100", got)
	}
	if got := Ms(nil, 0.99); got != 0 {
		t.Errorf("p99 of nothing = %v, want 0", got)
	}
}
