//go:build integration

package lab_test

import (
	"context"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/swarmlab/swarmlab/lab"
	"github.com/swarmlab/swarmlab/lab/provider/docker"
	"github.com/swarmlab/swarmlab/lab/wait"
)

// The helpers below run in a child process (this test binary, re-executed)
// so the parent can interrupt it or watch it panic.
const helperEnv = "SWARMLAB_CLEANUP_HELPER"

func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("runs only as a child of the cleanup tests")
	}
	name := os.Getenv("SWARMLAB_HELPER_LAB")
	l, err := lab.Up(context.Background(), shipped(t, "swarm-3"), lab.Options{Name: name, Ephemeral: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Down(context.Background()) })
	switch mode {
	case "panic":
		panic("a test panics while it owns a lab")
	case "block":
		time.Sleep(10 * time.Minute)
	}
}

func child(t *testing.T, mode, name string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.v")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, "SWARMLAB_HELPER_LAB="+name)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

func labContainers(ctx context.Context, name string) int {
	host, err := lab.Host(ctx)
	if err != nil {
		return -1
	}
	cs, err := host.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", docker.LabelLab+"="+name)})
	if err != nil {
		return -1
	}
	return len(cs.Items)
}

func TestInterruptDuringBringUpRemovesTheLab(t *testing.T) {
	const name = "it-sigint"
	lab.Down(context.Background(), name)
	cmd := child(t, "block", name)
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
		t.Errorf("child exit: %v, want exit code 130", err)
	}
	assertNothingLeft(t, name)
}

func TestPanicInATestRemovesTheLab(t *testing.T) {
	const name = "it-panic"
	lab.Down(context.Background(), name)
	cmd := child(t, "panic", name)
	err := cmd.Wait()
	if err == nil {
		t.Fatal("child passed; it should have panicked")
	}
	assertNothingLeft(t, name)
}
