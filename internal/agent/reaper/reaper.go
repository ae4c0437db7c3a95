// Package reaper lets the agent be a container's PID 1.
//
// PID 1 inherits every orphaned process and must reap it, and it must not
// reap the agent's own children behind os/exec's back (Wait would then fail
// with ECHILD). So PID 1 forks the agent again and does nothing else: it
// reaps every child, forwards termination signals to the agent, and exits
// with the agent's status. The forked agent is not PID 1 and runs normally.
package reaper

import "os"

// ShouldReap reports whether this process is PID 1 and so must reap.
func ShouldReap() bool { return os.Getpid() == 1 }
