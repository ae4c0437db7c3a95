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

// cleanMounts unmounts what a buildkitd that died (kill -9, OOM) left
// mounted below its root: an overlay and a tmpfs per running step. Only
// called with no managed buildkitd running, and only below envd's own
// state directory.
func (o Options) cleanMounts() error {
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
