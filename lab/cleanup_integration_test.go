//go:build integration

package lab_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/swarmlab/swarmlab/lab"
	"github.com/swarmlab/swarmlab/lab/labtest"
	"github.com/swarmlab/swarmlab/lab/provider/common"
	"github.com/swarmlab/swarmlab/lab/wait"
)

// The helpers below run in a child process (this test binary, re-executed)
// so the parent can interrupt it or watch it panic.
const helperEnv = "SWARMLAB_CLEANUP_HELPER"

const (
	reachedPanic = "reached panic:"
	panicMessage = "a test panics while it owns a lab"
)

func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("runs only as a child of the cleanup tests")
	}
	name := os.Getenv("SWARMLAB_HELPER_LAB")
	// labtest removes the lab when the test ends (a panic too), and on
	// SIGINT cancels the bring-up, which removes what it made, and exits
	// with 130.
	labtest.Up(t, shipped(t, "swarm-3"), name)
	switch mode {
	case "panic":
		// The parent reads this line to know the panic below is what ended
		// the child, and that the lab existed when it did.
		fmt.Printf("%s lab %s has %d containers\n", reachedPanic, name, labContainers(context.Background(), name))
		panic(panicMessage)
	case "block":
		time.Sleep(10 * time.Minute)
	}
}

// child starts the helper; what it writes to stdout and stderr goes to the
// returned buffer, to be read once the child has exited.
func child(t *testing.T, mode, name string) (*exec.Cmd, *bytes.Buffer) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.v")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, "SWARMLAB_HELPER_LAB="+name)
	out := new(bytes.Buffer)
	cmd.Stdout, cmd.Stderr = out, out // one writer: exec serialises the writes
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, out
}

func labContainers(ctx context.Context, name string) int {
	host, err := lab.Host(ctx)
	if err != nil {
		return -1
	}
	cs, err := host.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", common.LabelLab+"="+name)})
	if err != nil {
		return -1
	}
	return len(cs.Items)
}

func TestInterruptDuringBringUpRemovesTheLab(t *testing.T) {
	const name = "it-sigint"
	lab.Down(context.Background(), name)
	cmd, out := child(t, "block", name)
	// Interrupt as soon as the bring-up has made its first container.
	_, err := wait.For(context.Background(), "the child's bring-up to create a container", time.Minute, 50*time.Millisecond,
		func(ctx context.Context) wait.Result {
			if n := labContainers(ctx, name); n > 0 {
				return wait.Done("started")
			}
			return wait.Continue("no container yet")
		})
	if err != nil {
		cmd.Process.Kill()
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGINT)
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
		t.Errorf("child exit: %v, want exit code 130; its output:\n%s", err, out)
	}
	assertNothingLeft(t, name)
}

// TestPanicInATestRemovesTheLab: a child test brings a lab up and panics;
// the lab must be gone when the child has exited. The old version only
// checked that the child did not pass: a child that failed before it had
// made anything (no images, a bad topology, Up failing) left nothing behind
// and passed it. Now the child must have printed the marker with a lab of
// containers, and exited as a panic does (status 2, with the message).
func TestPanicInATestRemovesTheLab(t *testing.T) {
	const name = "it-panic"
	lab.Down(context.Background(), name)
	cmd, out := child(t, "panic", name)
	err := cmd.Wait()
	output := out.String()
	var marker string
	for _, line := range strings.Split(output, "\n") {
		if strings.HasPrefix(line, reachedPanic) {
			marker = line
		}
	}
	var containers int
	if marker == "" {
		t.Fatalf("the child never reached its panic (no %q line); its output:\n%s", reachedPanic, output)
	}
	if _, serr := fmt.Sscanf(marker, reachedPanic+" lab "+name+" has %d containers", &containers); serr != nil || containers == 0 {
		t.Fatalf("the child panicked without a lab: %q", marker)
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Fatalf("child exit: %v, want exit status 2 (a panic); its output:\n%s", err, output)
	}
	if !strings.Contains(output, "panic: "+panicMessage) {
		t.Fatalf("the child's output has no %q; its output:\n%s", "panic: "+panicMessage, output)
	}
	t.Logf("child: %s; exited with %v", marker, err)
	assertNothingLeft(t, name)
}
