package indexproxy

import (
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"envd.dev/envd/internal/testing/pyindex"
)

// TestUV runs what envd's build steps run, each with a cache of its own as separate steps may have: uv pip
// compile, then uv pip install --no-deps of every pin, one at a time. Against a plain index, each wheel is then
// downloaded twice; through the proxy, once.
//
// ENVD_TEST_UV is the uv binary (the test is skipped without it); ENVD_TEST_PYTHON, if set, the interpreter
// for the venv.
func TestUV(t *testing.T) {
	uv := os.Getenv("ENVD_TEST_UV")
	if uv == "" {
		t.Skip("set ENVD_TEST_UV to a uv binary to run uv against the proxy")
	}
	wheels := t.TempDir()
	if _, err := pyindex.MakeWheel(wheels, "alpha", "1.0", pyindex.WheelOptions{PadBytes: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	if _, err := pyindex.MakeWheel(wheels, "beta", "2.0", pyindex.WheelOptions{Requires: []string{"alpha"}, PadBytes: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	srv, err := pyindex.New(wheels, pyindex.WithoutMetadata())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	work := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(uv, args...)
		cmd.Dir = work
		cmd.Env = uvEnv(t.TempDir())
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("uv %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	venvArgs := []string{"venv", "venv"}
	if py := os.Getenv("ENVD_TEST_PYTHON"); py != "" {
		venvArgs = append(venvArgs, "--python", py)
	}
	run(venvArgs...)
	python := filepath.Join(work, "venv", "bin", "python")
	if err := os.WriteFile(filepath.Join(work, "requirements.in"), []byte("beta\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	// build resolves and installs, as envd's steps do, from index.
	build := func(index string) {
		t.Helper()
		run("pip", "compile", "requirements.in", "-o", "requirements.txt", "--index-url", index, "--python", python)
		lock, err := os.ReadFile(filepath.Join(work, "requirements.txt"))
		if err != nil {
			t.Fatal(err)
		}
		var pins []string
		for _, line := range strings.Split(string(lock), "\n") {
			if strings.Contains(line, "==") && !strings.HasPrefix(line, "#") && !strings.HasPrefix(line, " ") {
				pins = append(pins, strings.TrimSpace(line))
			}
		}
		if len(pins) != 2 {
			t.Fatalf("pins %v from\n%s", pins, lock)
		}
		for _, pin := range pins {
			run("pip", "install", "--no-deps", "--reinstall", "--index-url", index, "--python", python, pin)
		}
		cmd := exec.Command(python, "-c", "import alpha, beta; print(alpha.__version__, beta.__version__)")
		if out, err := cmd.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "1.0 2.0" {
			t.Fatalf("installed packages: %v: %s", err, out)
		}
	}

	build(srv.URL())
	t.Logf("without the proxy: downloads %v", srv.DownloadCounts())

	srv.Reset()
	p, err := Start(Options{Upstreams: []Upstream{{URL: srv.URL()}}, Dir: filepath.Join(t.TempDir(), "wheels")})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	build(p.IndexURL(0))
	want := map[string]int{pyindex.WheelFileName("alpha", "1.0"): 1, pyindex.WheelFileName("beta", "2.0"): 1}
	if got := srv.DownloadCounts(); !maps.Equal(got, want) {
		t.Errorf("through the proxy: upstream downloads %v, want %v", got, want)
	}
	t.Logf("through the proxy: downloads %v, stats %+v", srv.DownloadCounts(), p.Stats())
}

// uvEnv is the environment without the caller's uv and pip settings, with a fresh cache.
func uvEnv(cache string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "UV_") && !strings.HasPrefix(kv, "PIP_") && !strings.HasPrefix(kv, "VIRTUAL_ENV=") {
			env = append(env, kv)
		}
	}
	return append(env, "UV_CACHE_DIR="+cache, "UV_NO_CONFIG=1", "UV_PYTHON_DOWNLOADS=never", "UV_NO_PROGRESS=1")
}
