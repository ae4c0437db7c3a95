package cli

import (
	"os"
	"path/filepath"
	"testing"
)

func TestProfileIsWrittenWhenAsked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpu.pprof")
	t.Setenv(profileEnv, path)
	startProfile()()
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		t.Fatalf("no profile written: %v", err)
	}

	t.Setenv(profileEnv, filepath.Join(t.TempDir(), "missing", "cpu.pprof"))
	startProfile()() // reported on stderr, not fatal
}
