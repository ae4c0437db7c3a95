package buildkitd

import (
	"os"
	"path/filepath"
	"strings"
	"time"
)

// cgroupRoot is where the host's cgroup hierarchies are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// staleCgroupAge is how long a step's cgroup must have stood empty to be
// taken for a leftover: runc makes it just before it puts the step's
// first process in, and another builder on this machine may be doing that.
const staleCgroupAge = time.Minute

// cleanCgroups removes the step cgroups a killed buildkitd left behind:
// BuildKit puts each step in buildkit/ID below every hierarchy (cgroup v1:
// one per controller; v2: one), and only the daemon removes them. A cgroup
// still holding a process, or made within staleCgroupAge, is left alone;
// rmdir of one in use fails anyway. It returns how many it removed.
func cleanCgroups(now time.Time) int {
	parents := []string{filepath.Join(cgroupRoot, "buildkit")}
	v1, _ := filepath.Glob(filepath.Join(cgroupRoot, "*", "buildkit"))
	parents = append(parents, v1...)
	removed := 0
	for _, parent := range parents {
		entries, err := os.ReadDir(parent)
		if err != nil {
			continue
		}
		for _, e := range entries {
			dir := filepath.Join(parent, e.Name())
			if !e.IsDir() || !staleCgroup(dir, now) {
				continue
			}
			if os.Remove(dir) == nil {
				removed++
			}
		}
	}
	return removed
}

// staleCgroup: no process in it, and older than staleCgroupAge.
func staleCgroup(dir string, now time.Time) bool {
	fi, err := os.Stat(dir)
	if err != nil || now.Sub(fi.ModTime()) < staleCgroupAge {
		return false
	}
	procs, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	return err == nil && strings.TrimSpace(string(procs)) == ""
}
