package history

import (
	"testing"
	"time"
)

// The stall is measured between acknowledged writes only: reads, and writes
// that failed or whose outcome is unknown, do not end it.
func TestLongestWriteGap(t *testing.T) {
	s := time.Second
	op := func(k Kind, ret time.Duration, status int, unknown bool) Op {
		return Op{Kind: k, Key: "a", Invoke: ret - 100*time.Millisecond, Return: ret, Out: Output{Status: status, Unknown: unknown}}
	}
	ops := []Op{
		op(Put, 1*s, 200, false),
		op(Get, 3*s, 200, false),    // a read: no write
		op(Put, 4*s, 503, true),     // unknown: not acknowledged
		op(Delete, 7*s, 204, false), // acknowledged: ends the 6 s stall
		op(Put, 8*s, 200, false),
		op(Put, 30*s, 200, false), // outside the window
	}
	if got := LongestWriteGap(ops, 0, 10*s); got != 6*s {
		t.Errorf("LongestWriteGap = %s, want 6s (from the put at 1s to the delete at 7s)", got)
	}
	if got := LongestWriteGap(nil, 0, 10*s); got != 10*s {
		t.Errorf("no write at all: %s, want the whole window", got)
	}
}
