package lang

import (
	"flag"
	"os"
	"testing"
)

// update rewrites golden files: go test ./internal/lang -update
var update = flag.Bool("update", false, "rewrite the golden files (testdata/golden, stubs/, docs/build-file.md)")

// TestMain keeps tests away from the user's module cache: a test that
// reaches a git include by accident writes into a temporary one.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "envd-lang-test-")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_CACHE_HOME", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
