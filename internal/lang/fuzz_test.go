package lang

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"envd.dev/envd/internal/ir"
)

// FuzzLoad runs the interpreter and the builtins on arbitrary files: no
// panic, no hang beyond the step limit, no memory beyond the memory limit
// (64 MiB here; a load that passes twice that in one uninterruptible call
// crashes the fuzzer, which saves the input), and every error a positioned
// *ir.Error. Its seeds are real build files (the article's blocks, the
// repository's examples, every builtin) and, in testdata/fuzz/FuzzLoad,
// every bad input found (NUL bytes, memory bombs, builtin names, ...);
// `go test` runs them as a test, `make fuzz-smoke` explores from them for
// 30 s in CI, `go test -fuzz=FuzzLoad ./internal/lang` for longer.
func FuzzLoad(f *testing.F) {
	var seeds []string
	for _, pattern := range []string{"testdata/*.envd", "testdata/original/*.envd", "../../examples/*/build.envd"} {
		files, _ := filepath.Glob(pattern)
		seeds = append(seeds, files...)
	}
	if len(seeds) < 5 {
		f.Fatalf("seed corpus missing: %v", seeds)
	}
	for _, s := range seeds {
		src, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	for _, src := range []string{
		build(`lib = include(path="testdata/article3.envd")`, "lib.configure_streamlit(8501)"),
		`lib = include(git="https://github.com/team/envdlib", ref="v1")` + "\n" + build("lib.f()"),
		build("n = 0", "while True:", "    n += 1"),
		build("build()"),
		"def build(:\n",
		build(`install.python_packages(name=["numpy; rm -rf /"])`),
		build(`install.python_packages(name=["torch --index-url https://download.pytorch.org/whl/cpu", "--pre", "-f", "file:///w"])`),
		build(`install.python_packages(name=["a --no-deps"])`, `install.python_packages(name=["-i=x", "--trusted-host"])`),
	} {
		f.Add([]byte(src))
	}
	cache := f.TempDir()
	f.Fuzz(func(t *testing.T, src []byte) {
		// Offline: an include(git=...) must not reach the network.
		l := Loader{Print: io.Discard, MaxSteps: 100_000, MaxMemory: 64 << 20, Offline: true, ModuleCache: cache,
			Abort: func(err error) { panic(fmt.Sprintf("memory bound not enforced: %v\nsource:\n%s", err, src)) }}
		_, err := l.LoadSource("build.envd", src, "")
		if err == nil {
			return
		}
		if strings.Contains(err.Error(), "internal error") {
			t.Fatalf("builtin panicked: %v\nsource:\n%s", err, src)
		}
		var e *ir.Error
		if !errors.As(err, &e) || e.Pos.File == "" {
			t.Fatalf("error without a position: %v\nsource:\n%s", err, src)
		}
	})
}
