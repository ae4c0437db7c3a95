//go:build unix

package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Every process the agent starts leads a new session, without a
// controlling terminal, so that the agent can signal it together with
// everything it spawned, including an interactive shell's jobs (which get
// process groups of their own). Only a process that calls setsid itself
// (setsid(1), a daemon) leaves; that is the way to outlive a session.
func newSessionAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setsid: true} }

// killWait bounds how long stopSession waits for SIGKILLed processes to be
// gone: the kernel tears them down asynchronously, and one forked while the
// session was being scanned needs a second SIGKILL.
const killWait = 2 * time.Second

// stopSession sends sig to every process of session sid, waits up to grace
// for them to exit, then kills whatever is left and waits until it is gone,
// so that a restart finds its ports and files free.
func stopSession(sid int, sig syscall.Signal, grace time.Duration) {
	if !signalSession(sid, sig) {
		return // nothing left
	}
	signalSession(sid, syscall.SIGCONT) // stopped processes must see sig too
	if waitSessionGone(sid, grace, nil) {
		return
	}
	waitSessionGone(sid, killWait, func() { signalSession(sid, syscall.SIGKILL) })
}

// waitSessionGone polls until session sid has no live process or d has
// passed, calling each (if set) before every look. It reports whether the
// session is gone.
func waitSessionGone(sid int, d time.Duration, each func()) bool {
	deadline := time.Now().Add(d)
	for {
		if each != nil {
			each()
		}
		if !sessionAlive(sid) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// exitCode turns the result of cmd.Wait into a shell-style exit code:
// the process's own code, or 128+n if signal n killed it.
func exitCode(state *os.ProcessState) int {
	if ws, ok := state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return state.ExitCode()
}

// errNotFound is returned by lookPath when the command is not in PATH.
var errNotFound = errors.New("not found")

// lookPath finds name in the PATH of env rather than the agent's own PATH
// (which exec.Command would use), so Config.Env can extend PATH. A name with
// a slash is used as is; a relative one then resolves against the workdir.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	pathEnv := getEnv(env, "PATH")
	for _, dir := range filepath.SplitList(pathEnv) {
		if dir == "" {
			dir = "."
		}
		path := filepath.Join(dir, name)
		if isExecutable(path) {
			return path, nil
		}
	}
	return "", fmt.Errorf("command %q %w in PATH", name, errNotFound)
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}
