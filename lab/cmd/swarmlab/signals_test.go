package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The signal tests run withSignals in a child process (this test binary,
// re-executed) and signal it, as a shell or CI would the CLI.
const signalHelperEnv = "SWARMLAB_SIGNAL_HELPER"

// TestSignalHelper is the child: a command that waits for its context to
// end, then cleans up (slowly, or, "stuck", never) and fails.
func TestSignalHelper(t *testing.T) {
	mode := os.Getenv(signalHelperEnv)
	if mode == "" {
		t.Skip("runs only as a child of the signal tests")
	}
	os.Exit(withSignals(os.Stderr, os.Exit, func(ctx context.Context) int {
		fmt.Println("ready")
		<-ctx.Done()
		fmt.Printf("cancelled: %v\n", context.Cause(ctx))
		if mode == "stuck" {
			time.Sleep(time.Hour)
		}
		time.Sleep(200 * time.Millisecond) // removing what it made
		fmt.Println("cleanup ran")
		return 1 // a cancelled command fails; the signal's code wins
	}))
}

type signalChild struct {
	cmd   *exec.Cmd
	lines chan string
	mu    sync.Mutex
	out   bytes.Buffer // stdout and stderr
}

func startSignalChild(t *testing.T, mode string) *signalChild {
	t.Helper()
	c := &signalChild{lines: make(chan string, 100)}
	c.cmd = exec.Command(os.Args[0], "-test.run=^TestSignalHelper$")
	c.cmd.Env = append(os.Environ(), signalHelperEnv+"="+mode)
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.cmd.Stderr = writerFunc(func(p []byte) (int, error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.out.Write(p)
	})
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.mu.Lock()
			c.out.WriteString(sc.Text() + "\n")
			c.mu.Unlock()
			c.lines <- sc.Text()
		}
		close(c.lines)
	}()
	t.Cleanup(func() { c.cmd.Process.Kill() })
	return c
}

// await reads the child's stdout until a line starts with prefix.
func (c *signalChild) await(t *testing.T, prefix string) string {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				t.Fatalf("the child ended before %q; its output:\n%s", prefix, c.output())
			}
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-timeout:
			t.Fatalf("no %q from the child in 30 s; its output:\n%s", prefix, c.output())
		}
	}
}

func (c *signalChild) output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.String()
}

// wait returns the child's exit code.
func (c *signalChild) wait(t *testing.T) int {
	t.Helper()
	for range c.lines { // drain: Wait must not race the reader
	}
	err := c.cmd.Wait()
	if err == nil {
		return 0
	}
	ee, ok := err.(*exec.ExitError)
	if !ok {
		t.Fatalf("child: %v", err)
	}
	return ee.ExitCode()
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// The first SIGINT or SIGTERM cancels the command's context; the command
// cleans up and returns, and the process exits as the signal would have.
func TestSignalCancelsTheCommandThenExitsWithItsCode(t *testing.T) {
	for _, tc := range []struct {
		sig  syscall.Signal
		name string
		code int
	}{{syscall.SIGINT, "SIGINT", 130}, {syscall.SIGTERM, "SIGTERM", 143}} {
		c := startSignalChild(t, "cleanup")
		c.await(t, "ready")
		c.cmd.Process.Signal(tc.sig)
		if got := c.await(t, "cancelled: "); got != "cancelled: interrupted by "+tc.name {
			t.Errorf("%s: the command's context ended with %q", tc.name, got)
		}
		c.await(t, "cleanup ran")
		if code := c.wait(t); code != tc.code {
			t.Errorf("%s: exit code %d, want %d; output:\n%s", tc.name, code, tc.code, c.output())
		}
		if !strings.Contains(c.output(), "swarmlab: interrupted by "+tc.name+": stopping (a second signal exits at once)") {
			t.Errorf("%s: stderr does not say it is stopping:\n%s", tc.name, c.output())
		}
	}
}

// A second signal does not wait for a cleanup that hangs.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	c := startSignalChild(t, "stuck")
	c.await(t, "ready")
	c.cmd.Process.Signal(syscall.SIGINT)
	c.await(t, "cancelled: ")
	start := time.Now()
	c.cmd.Process.Signal(syscall.SIGTERM)
	if code := c.wait(t); code != 130 {
		t.Errorf("exit code %d, want 130 (the first signal's); output:\n%s", code, c.output())
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the second signal took %v to end the process", d)
	}
	out := c.output()
	if strings.Contains(out, "cleanup ran") || !strings.Contains(out, "swarmlab: SIGTERM again: exiting now") {
		t.Errorf("output:\n%s", out)
	}
}
