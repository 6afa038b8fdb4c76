package lab

import (
	"os"
	"testing"
	"time"
)

func TestInterruptHooksRunInOrderAndAreBounded(t *testing.T) {
	defer func(old time.Duration) { hookTimeout = old }(hookTimeout)
	hookTimeout = 200 * time.Millisecond
	interruptHooks.fns = nil
	defer func() { interruptHooks.fns = nil }()

	var got []string
	OnInterrupt(func(s os.Signal) { got = append(got, "first "+s.String()) })
	OnInterrupt(func(os.Signal) { got = append(got, "second") })
	runInterruptHooks(os.Interrupt)
	if len(got) != 2 || got[0] != "first interrupt" || got[1] != "second" {
		t.Fatalf("hooks ran as %q, want first then second", got)
	}

	// A hook that hangs must not keep the labs from being swept.
	OnInterrupt(func(os.Signal) { select {} })
	start := time.Now()
	runInterruptHooks(os.Interrupt)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("a hanging hook held the sweep for %v", d)
	}
}
