package buildkitd

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// managedPID returns the pid in the pid file if that process is alive and is
// the buildkitd started with this directory's config. The cmdline check
// guards against a recycled pid after a reboot or a crash.
func (o Options) managedPID() (int, bool) {
	b, err := os.ReadFile(o.pidPath())
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	if !alive(pid) || !hasArg(pid, o.configPath()) {
		return pid, false
	}
	return pid, true
}

// alive reports whether pid exists and is not a zombie. A zombie answers
// kill(pid, 0) but is gone for our purposes: it appears between a daemon's
// exit and its parent's wait when envd itself started it.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && err != syscall.EPERM {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses and may
	// itself contain ") ".
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}

func hasArg(pid int, arg string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	for _, a := range bytes.Split(b, []byte{0}) {
		if string(a) == arg {
			return true
		}
	}
	return false
}

// waitGone polls until pid has exited or d has passed.
func waitGone(pid int, d time.Duration) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if !alive(pid) {
			return true
		}
	}
	return !alive(pid)
}

// lock takes an exclusive flock on DIR/buildkitd.lock; the returned func
// releases it. The lock dies with the process, so a crash never leaves it held.
func (o Options) lock() (func(), error) {
	f, err := os.OpenFile(o.lockPath(), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", o.lockPath(), err)
	}
	return func() { f.Close() }, nil
}
