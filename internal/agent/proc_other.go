//go:build unix && !linux

package agent

import "syscall"

// Without /proc, a session is approximated by its leader's process group.

func signalSession(sid int, sig syscall.Signal) bool { return syscall.Kill(-sid, sig) == nil }

func sessionAlive(sid int) bool { return syscall.Kill(-sid, 0) == nil }
