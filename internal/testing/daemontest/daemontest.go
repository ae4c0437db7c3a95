// Package daemontest gives package tests a buildkitd to run: envd is its
// own (internal/bkdaemon), but a test binary is not envd, so the managed
// builder's fallback to "this executable" must not be taken in a test.
package daemontest

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Buildkitd returns $ENVD_BUILDKITD, or else a directory of links to the
// repository's bin/envd (make build) named buildkitd, buildctl and
// envd-handover, which envd answers to; ENVD_BUILDKITD is set to it for
// the test and the processes it starts. It skips the test when neither is
// there.
func Buildkitd(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("ENVD_BUILDKITD"); p != "" {
		return p
	}
	_, here, _, _ := runtime.Caller(0)
	envd := filepath.Join(filepath.Dir(here), "..", "..", "..", "bin", "envd")
	if _, err := os.Stat(envd); err != nil {
		t.Skipf("no buildkitd: set ENVD_BUILDKITD, or run make build for %s", envd)
	}
	dir := t.TempDir()
	for _, name := range []string{"buildkitd", "buildctl", "envd-handover"} {
		if err := os.Symlink(envd, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "buildkitd")
	t.Setenv("ENVD_BUILDKITD", bin)
	return bin
}
