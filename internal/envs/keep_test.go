package envs

import (
	"bytes"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"envd.dev/envd/internal/contract"
	"envd.dev/envd/internal/runtime"
)

func TestLostChanges(t *testing.T) {
	// What docker diff shows for an environment of root's, fresh and then
	// with the user's work in it.
	fresh := []runtime.Change{
		{Path: "/home", Kind: "C"}, {Path: "/home/envd", Kind: "C"}, {Path: "/home/envd/proj", Kind: "A"},
		{Path: "/root", Kind: "C"}, {Path: "/root/.local", Kind: "A"}, {Path: "/root/.local/state", Kind: "A"},
		{Path: "/root/.local/state/envd", Kind: "A"}, {Path: "/root/.local/state/envd/logs", Kind: "A"},
		{Path: "/root/.local/state/envd/logs/status.json", Kind: "A"},
		{Path: "/run", Kind: "C"}, {Path: "/run/envd", Kind: "A"},
		{Path: "/etc", Kind: "C"}, {Path: "/etc/passwd", Kind: "C"},
		{Path: "/tmp", Kind: "C"}, {Path: "/tmp/x", Kind: "A"},
	}
	own := ownPaths(runtime.Spec{Project: runtime.Project{Path: "/home/envd/proj"}}, "/root/.local/state/envd/logs")
	tests := []struct {
		name    string
		changes []runtime.Change
		want    []string
	}{
		{"fresh", fresh, nil},
		{"a file in root's home", append(fresh[:len(fresh):len(fresh)], runtime.Change{Path: "/root/p.txt", Kind: "A"}), []string{"/root/p.txt"}},
		{"a sibling named like a parent", []runtime.Change{{Path: "/root", Kind: "C"}, {Path: "/root-x", Kind: "A"}, {Path: "/root/a", Kind: "A"}}, []string{"/root/a", "/root-x"}},
		{"deleted and modified", []runtime.Change{{Path: "/usr", Kind: "C"}, {Path: "/usr/bin", Kind: "C"}, {Path: "/usr/bin/vi", Kind: "D"}, {Path: "/etc", Kind: "C"}, {Path: "/etc/hosts.allow", Kind: "C"}}, []string{"/etc/hosts.allow", "/usr/bin/vi"}},
		{"an empty directory made", []runtime.Change{{Path: "/data", Kind: "A"}}, []string{"/data"}},
		{"under a mount point", []runtime.Change{{Path: "/home/envd/proj/x", Kind: "A"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := lostChanges(tt.changes, own)
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("lost %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDescribeLost(t *testing.T) {
	tests := []struct {
		lost []string
		want string
	}{
		{[]string{"/root/p.txt"}, "1 changed file (/root/p.txt)"},
		{[]string{"/a", "/b", "/c", "/d", "/e", "/f", "/g"}, "7 changed files (/a, /b, /c, /d, /e, and 2 more)"},
	}
	for _, tt := range tests {
		if got := describeLost(tt.lost); got != tt.want {
			t.Errorf("describeLost(%q) = %q, want %q", tt.lost, got, tt.want)
		}
	}
}

// TestEnsureHostKeyRace: two first ups at once end with one host key, the
// one both were told (the pin and sshd agree).
func TestEnsureHostKeyRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), contract.HostKeyFile)
	const n = 8
	keys := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, pub, err := ensureHostKey(path)
			if err != nil {
				t.Error(err)
				return
			}
			keys[i] = pub.Marshal()
		}()
	}
	wg.Wait()
	onDisk, err := readHostKey(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range keys {
		if !bytes.Equal(k, onDisk.Marshal()) {
			t.Errorf("caller %d was given a key that is not the one on disk", i)
		}
	}
}
