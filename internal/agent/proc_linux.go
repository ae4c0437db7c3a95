package agent

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// signalSession sends sig to the live processes of session sid and reports
// whether there were any.
func signalSession(sid int, sig syscall.Signal) bool {
	pids := sessionPIDs(sid)
	for _, pid := range pids {
		_ = syscall.Kill(pid, sig)
	}
	return len(pids) > 0
}

func sessionAlive(sid int) bool { return len(sessionPIDs(sid)) > 0 }

// sessionPIDs lists the processes of session sid from /proc. Zombies are
// left out: they are dead, only waiting for their parent (or PID 1) to reap
// them.
func sessionPIDs(sid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		// "pid (comm) state ppid pgrp session ..."; comm may hold spaces
		// and parentheses, so parse after the last ')'.
		s := string(stat)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 4 || f[0] == "Z" || f[0] == "X" || f[3] != strconv.Itoa(sid) {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}
