package labtest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

const helperEnv = "SWARMLAB_LABTEST_HELPER"

// TestInterruptHelper is the child of TestSignalRemovesLabsAndExits: a test
// binary with a bring-up in flight, a lab up and a lab its test removed.
func TestInterruptHelper(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("runs only as a child of TestSignalRemovesLabsAndExits")
	}
	ctx := Context()
	OnInterrupt(func(s os.Signal) { fmt.Printf("hook: %v\n", s) })
	removeOnInterrupt("lab-up", func(ctx context.Context) error {
		if ctx.Err() != nil {
			fmt.Println("removing with a context that has ended")
		}
		fmt.Println("removed lab-up")
		return nil
	})
	release := removeOnInterrupt("lab-gone", func(context.Context) error {
		fmt.Println("removed lab-gone")
		return nil
	})
	release() // its test removed it
	interrupts.ups.Add(1)
	go func() { // a bring-up: it stops when ctx ends, and cleans up
		<-ctx.Done()
		time.Sleep(200 * time.Millisecond)
		fmt.Printf("bring-up cleaned up (%v)\n", context.Cause(ctx))
		interrupts.ups.Done()
	}()
	fmt.Println("ready")
	time.Sleep(time.Minute)
	fmt.Println("the signal did not end the process")
}

// The first SIGINT or SIGTERM cancels Context, waits for the bring-ups in
// flight to clean up, removes the labs still up, and exits as the signal
// would have.
func TestSignalRemovesLabsAndExits(t *testing.T) {
	for _, tc := range []struct {
		sig  syscall.Signal
		name string
		code int
	}{{syscall.SIGINT, "SIGINT", 130}, {syscall.SIGTERM, "SIGTERM", 143}} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestInterruptHelper$")
		cmd.Env = append(os.Environ(), helperEnv+"=1")
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(stdout)
		if line, err := r.ReadString('\n'); err != nil || line != "ready\n" {
			cmd.Process.Kill()
			t.Fatalf("%s: the child said %q, %v", tc.name, line, err)
		}
		cmd.Process.Signal(tc.sig)
		rest, _ := io.ReadAll(r)
		err = cmd.Wait()
		out := string(rest)
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != tc.code {
			t.Errorf("%s: child exit %v, want code %d; output:\n%s", tc.name, err, tc.code, out)
		}
		want := fmt.Sprintf("hook: %v\nbring-up cleaned up (test binary interrupted by %s)\nremoved lab-up\n", tc.sig, tc.name)
		if out != want {
			t.Errorf("%s: child output %q, want %q (the hook, the bring-up's cleanup, then the lab still up, and only it)", tc.name, out, want)
		}
	}
}

func TestInterruptHooksRunInOrderAndAreBounded(t *testing.T) {
	defer func(old time.Duration) { hookTimeout = old }(hookTimeout)
	hookTimeout = 200 * time.Millisecond
	interrupts.hooks = nil
	defer func() { interrupts.hooks = nil }()

	var got []string
	// Registered as OnInterrupt does, without installing the handler in
	// this test binary.
	interrupts.hooks = append(interrupts.hooks,
		func(s os.Signal) { got = append(got, "first "+s.String()) },
		func(os.Signal) { got = append(got, "second") })
	runHooks(os.Interrupt)
	if len(got) != 2 || got[0] != "first interrupt" || got[1] != "second" {
		t.Fatalf("hooks ran as %q, want first then second", got)
	}

	// A hook that hangs must not keep the labs from being removed.
	interrupts.hooks = append(interrupts.hooks, func(os.Signal) { time.Sleep(time.Hour) })
	start := time.Now()
	runHooks(os.Interrupt)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("a hanging hook held the removal for %v", d)
	}
}
