package buildkitd

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestStaleCgroup(t *testing.T) {
	now := time.Now()
	root := t.TempDir()
	mk := func(name, procs string, age time.Duration) string {
		dir := filepath.Join(root, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if procs != "-" {
			if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(procs), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		os.Chtimes(dir, now.Add(-age), now.Add(-age))
		return dir
	}
	for _, tt := range []struct {
		name, procs string
		age         time.Duration
		want        bool
	}{
		{"empty-old", "", 2 * time.Minute, true},
		{"empty-old-newline", "\n", time.Hour, true},
		{"busy-old", "4242\n", time.Hour, false},
		{"empty-new", "", 10 * time.Second, false},
		{"not-a-cgroup", "-", time.Hour, false},
	} {
		if got := staleCgroup(mk(tt.name, tt.procs, tt.age), now); got != tt.want {
			t.Errorf("%s: stale = %v, want %v", tt.name, got, tt.want)
		}
	}
	if got := staleCgroup(filepath.Join(root, "gone"), now); got {
		t.Error("a missing directory is not stale")
	}
}
