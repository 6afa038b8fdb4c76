//go:build unix

package lab

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

// A process that has exited is not alive, reaped or not: a forwarder left
// a zombie (nothing reaps orphans under some containers' init) is gone.
func TestAliveIsFalseForAZombie(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc here to tell a zombie by")
	}
	if !alive(os.Getpid()) {
		t.Fatal("this process is not alive")
	}
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	defer cmd.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for !zombie(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d did not become a zombie within 5s", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if alive(pid) {
		t.Errorf("the exited, unreaped process %d is alive", pid)
	}
}
