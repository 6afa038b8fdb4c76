//go:build unix

package lab

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
)

// alive reports whether process pid runs. A zombie does not: a forwarder
// whose parent (the up that started it) has exited is reaped by init, but
// where nothing reaps orphans (some containers' init) it stays a zombie,
// which signal 0 still finds.
func alive(pid int) bool {
	return pid > 0 && syscall.Kill(pid, 0) == nil && !zombie(pid)
}

// zombie reports whether pid has exited and is not reaped yet, as Linux's
// /proc says; where there is no /proc it is taken to run.
func zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// "pid (comm) S ...": comm may hold ") ", the state follows the last.
	i := bytes.LastIndex(b, []byte(") "))
	return i >= 0 && i+2 < len(b) && b[i+2] == 'Z'
}

func terminate(pid int) { syscall.Kill(pid, syscall.SIGTERM) }
