package buildkitd

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// mountsBelow lists the mount points in a /proc/self/mountinfo stream that
// lie strictly below dir, deepest first (the order to unmount them in).
func mountsBelow(r io.Reader, dir string) []string {
	prefix := strings.TrimSuffix(dir, "/") + "/"
	var out []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS ...
		f := strings.Fields(sc.Text())
		if len(f) < 5 {
			continue
		}
		mp := unescapeMountinfo(f[4])
		if strings.HasPrefix(mp, prefix) {
			out = append(out, mp)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// unescapeMountinfo undoes the kernel's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// rootBelow reports whether a /proc/PID/mountinfo stream has its root
// ("/") on an overlay whose upper directory lies below dir: a build step's
// container of the buildkitd whose root is dir.
func rootBelow(r io.Reader, dir string) bool {
	prefix := "upperdir=" + strings.TrimSuffix(dir, "/") + "/"
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		before, after, ok := strings.Cut(sc.Text(), " - ")
		f := strings.Fields(before)
		if !ok || len(f) < 5 || f[4] != "/" {
			continue
		}
		// FSTYPE SOURCE SUPEROPTIONS
		g := strings.Fields(after)
		if len(g) < 3 || g[0] != "overlay" {
			return false
		}
		for _, opt := range strings.Split(g[2], ",") {
			if strings.HasPrefix(unescapeMountinfo(opt), prefix) {
				return true
			}
		}
		return false
	}
	return false
}

// killLeftovers kills the processes of build steps that outlived a
// buildkitd that died: with their runc gone they keep running (a long step
// for its whole length) and keep their mounts busy.
func (o Options) killLeftovers() {
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	var pids []int
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		f, err := os.Open("/proc/" + p.Name() + "/mountinfo")
		if err != nil {
			continue
		}
		if rootBelow(f, o.rootDir()) {
			pids = append(pids, pid)
		}
		f.Close()
	}
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	for _, pid := range pids {
		waitGone(pid, 5*time.Second)
	}
	if len(pids) > 0 {
		o.logf("killed %d processes of build steps a stopped buildkitd left running", len(pids))
	}
}

// cleanMounts unmounts what a buildkitd that died (kill -9, OOM) left
// mounted below its root: an overlay and a tmpfs per running step. Only
// called with no managed buildkitd running, and only below envd's own
// state directory.
func (o Options) cleanMounts() error {
	o.killLeftovers()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil // not Linux, or no /proc: nothing we can see to clean
	}
	mps := mountsBelow(f, o.rootDir())
	f.Close()
	var failed []string
	for _, mp := range mps {
		if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil && err != syscall.EINVAL && err != syscall.ENOENT {
			failed = append(failed, fmt.Sprintf("%s (%v)", mp, err))
		}
	}
	if len(mps) > 0 {
		o.logf("unmounted %d mounts a stopped buildkitd left below %s", len(mps)-len(failed), o.rootDir())
	}
	if n := cleanCgroups(time.Now()); n > 0 {
		o.logf("removed %d empty step cgroups a stopped buildkitd left", n)
	}
	if len(failed) > 0 {
		return fmt.Errorf("cannot unmount what a stopped buildkitd left behind: %s", strings.Join(failed, ", "))
	}
	return nil
}

// LogPath is where the managed buildkitd of o writes its log.
func LogPath(o Options) string {
	o, err := o.withDefaults()
	if err != nil {
		return ""
	}
	return o.logPath()
}
