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
// Fuzz workers are this binary run again and killed at the end: they use
// the directory of the process that started them, which removes it.
func TestMain(m *testing.M) {
	const inherited = "ENVD_LANG_TEST_CACHE"
	if dir := os.Getenv(inherited); dir != "" {
		os.Setenv("XDG_CACHE_HOME", dir)
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "envd-lang-test-")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_CACHE_HOME", dir)
	os.Setenv(inherited, dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
