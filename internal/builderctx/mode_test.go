package builderctx

import (
	"os"
	"path/filepath"
	"testing"
)

// contexts.json lives beside envd's private ssh key: the dir envd makes
// for it, and the file, are the owner's only.
func TestStoreIsPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "envd")
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Create(Context{Name: "remote", Builder: "tcp://127.0.0.1:1234"}); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, "contexts.json"): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s has mode %v, want %v", path, fi.Mode().Perm(), want)
		}
	}
}
