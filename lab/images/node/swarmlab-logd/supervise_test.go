package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The command's output reaches supervise's own output unchanged and the
// node's dockerd.log line by line; its exit code is supervise's.
func TestSuperviseKeepsTheOutput(t *testing.T) {
	dir := t.TempDir()
	var out, errb syncBuffer
	code := supervise([]string{"sh", "-c", "echo starting; echo 'level=warning msg=x' >&2; printf 'no newline'; exit 3"},
		superviseOptions{dir: dir, node: "m1", stdout: &out, stderr: &errb, logf: t.Logf})
	if code != 3 {
		t.Errorf("exit code %d, want 3", code)
	}
	if out.String() != "starting\nno newline" || errb.String() != "level=warning msg=x\n" {
		t.Errorf("passed through %q and %q", out.String(), errb.String())
	}
	got := readFile(t, filepath.Join(dir, "nodes/m1/dockerd.log"))
	for _, want := range []string{" stdout starting\n", " stderr level=warning msg=x\n", " stdout no newline\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("dockerd.log lacks %q:\n%s", want, got)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(got), "\n") {
		if _, _, _, ok := parseLine(line); !ok {
			t.Errorf("line %q is not in the log format", line)
		}
	}
}

// Without a logs directory (the image run outside a lab) the command just
// runs.
func TestSuperviseWithoutALogsDirectory(t *testing.T) {
	var out syncBuffer
	code := supervise([]string{"sh", "-c", "echo hi"}, superviseOptions{dir: filepath.Join(t.TempDir(), "none"), node: "m1", stdout: &out, stderr: &out, logf: func(string, ...any) {}})
	if code != 0 || out.String() != "hi\n" {
		t.Errorf("exit %d, output %q", code, out.String())
	}
	if code := supervise([]string{"/no/such/dockerd"}, superviseOptions{stdout: &out, stderr: &out, logf: func(string, ...any) {}}); code != 127 {
		t.Errorf("a command that cannot start: exit %d, want 127", code)
	}
}

// docker stop's SIGTERM reaches the command, and supervise waits for it to
// end.
func TestSuperviseForwardsSignals(t *testing.T) {
	dir := t.TempDir()
	var out syncBuffer
	done := make(chan int)
	go func() {
		done <- supervise([]string{"sh", "-c", `trap 'echo got TERM; exit 7' TERM; echo ready; while :; do sleep 0.05; done`},
			superviseOptions{dir: dir, node: "m1", stdout: &out, stderr: &out, logf: t.Logf})
	}()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), "ready") {
		if time.Now().After(deadline) {
			t.Fatal("the command did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	select {
	case code := <-done:
		if code != 7 || !strings.Contains(out.String(), "got TERM") {
			t.Errorf("exit %d, output %q", code, out.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("SIGTERM did not reach the command")
	}
	if got := readFile(t, filepath.Join(dir, "nodes/m1/dockerd.log")); !strings.Contains(got, "stdout got TERM\n") {
		t.Errorf("dockerd.log lacks the command's last words:\n%s", got)
	}
}
