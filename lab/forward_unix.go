//go:build unix

package lab

import "syscall"

func alive(pid int) bool { return pid > 0 && syscall.Kill(pid, 0) == nil }

func terminate(pid int) { syscall.Kill(pid, syscall.SIGTERM) }
