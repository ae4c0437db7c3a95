package pyindex

import (
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// One venv serves every case (creating one takes seconds); each case installs into its own --target directory.
var (
	venvOnce sync.Once
	venvDir  string
	venvErr  error
)

func python(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("installs with pip; skipped in -short mode")
	}
	venvOnce.Do(func() {
		var dir string
		dir, venvErr = os.MkdirTemp("", "pyindex-venv-")
		if venvErr != nil {
			return
		}
		venvDir = dir
		var out []byte
		out, venvErr = exec.Command("python3", "-m", "venv", dir).CombinedOutput()
		if venvErr != nil {
			venvErr = &venvError{err: venvErr, out: string(out)}
		}
	})
	if venvErr != nil {
		t.Skipf("python3 -m venv is unavailable: %v", venvErr)
	}
	return filepath.Join(venvDir, "bin", "python")
}

type venvError struct {
	err error
	out string
}

func (e *venvError) Error() string {
	if out := strings.TrimSpace(e.out); out != "" {
		return e.err.Error() + ": " + out
	}
	return e.err.Error()
}

func TestMain(m *testing.M) {
	code := m.Run()
	if venvDir != "" {
		os.RemoveAll(venvDir)
	}
	os.Exit(code)
}

// pipEnv is the environment without the caller's pip settings: a PIP_FIND_LINKS or index in pip.conf would let pip
// take wheels from elsewhere, and the counters would no longer describe what pip downloaded.
func pipEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PIP_") && !strings.HasPrefix(kv, "PYTHON") {
			env = append(env, kv)
		}
	}
	return append(env, append([]string{"PIP_CONFIG_FILE=" + os.DevNull, "PIP_DISABLE_PIP_VERSION_CHECK=1", "PIP_NO_INPUT=1"}, extra...)...)
}

func TestPipInstallsFromIndex(t *testing.T) {
	type wheelSpec struct {
		name, version string
		opts          WheelOptions
	}
	for _, tc := range []struct {
		name    string
		wheels  []wheelSpec
		install string
		// imports maps an import name to the __version__ it must report.
		imports map[string]string
		// downloads is exactly what pip must fetch.
		downloads map[string]int
	}{
		{
			name:      "single package",
			wheels:    []wheelSpec{{"alpha", "1.0", WheelOptions{PadBytes: 50_000}}},
			install:   "alpha",
			imports:   map[string]string{"alpha": "1.0"},
			downloads: map[string]int{"alpha-1.0-py3-none-any.whl": 1},
		},
		{
			name: "dependency is pulled, unrelated package is not",
			wheels: []wheelSpec{
				{"app", "0.3", WheelOptions{Requires: []string{"lib>=1.0"}}},
				{"lib", "1.2", WheelOptions{}},
				{"unrelated", "9.9", WheelOptions{}},
			},
			install:   "app",
			imports:   map[string]string{"app": "0.3", "lib": "1.2"},
			downloads: map[string]int{"app-0.3-py3-none-any.whl": 1, "lib-1.2-py3-none-any.whl": 1},
		},
		{
			name:      "pinned version among several",
			wheels:    []wheelSpec{{"multi", "1.0", WheelOptions{}}, {"multi", "2.0", WheelOptions{}}},
			install:   "multi==1.0",
			imports:   map[string]string{"multi": "1.0"},
			downloads: map[string]int{"multi-1.0-py3-none-any.whl": 1},
		},
		{
			name:      "newest by default",
			wheels:    []wheelSpec{{"multi", "1.0", WheelOptions{}}, {"multi", "2.0", WheelOptions{}}},
			install:   "multi",
			imports:   map[string]string{"multi": "2.0"},
			downloads: map[string]int{"multi-2.0-py3-none-any.whl": 1},
		},
		{
			name:      "unnormalized name",
			wheels:    []wheelSpec{{"Fancy.Name_pkg", "0.1", WheelOptions{}}},
			install:   "fancy-name-pkg",
			imports:   map[string]string{"fancy_name_pkg": "0.1"},
			downloads: map[string]int{"fancy_name_pkg-0.1-py3-none-any.whl": 1},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			py := python(t)
			dir := t.TempDir()
			var wantBytes int64
			for _, w := range tc.wheels {
				path := makeWheel(t, dir, w.name, w.version, w.opts)
				if tc.downloads[filepath.Base(path)] > 0 {
					wantBytes += fileSize(t, path)
				}
			}
			s := startServer(t, dir)

			target := t.TempDir()
			install := exec.Command(py, "-m", "pip", "install", "--quiet", "--no-cache-dir",
				"--index-url", s.URL(), "--trusted-host", "127.0.0.1", "--target", target, tc.install)
			install.Env = pipEnv()
			if out, err := install.CombinedOutput(); err != nil {
				t.Fatalf("pip install %s: %v\n%s", tc.install, err, out)
			}

			for pkg, version := range tc.imports {
				check := exec.Command(py, "-c", "import "+pkg+"; print("+pkg+".__version__)")
				check.Env = pipEnv("PYTHONPATH=" + target)
				out, err := check.CombinedOutput()
				if err != nil {
					t.Fatalf("import %s: %v\n%s", pkg, err, out)
				}
				if got := strings.TrimSpace(string(out)); got != version {
					t.Errorf("%s.__version__ = %q, want %q", pkg, got, version)
				}
			}

			if got := s.DownloadCounts(); !maps.Equal(got, tc.downloads) {
				t.Errorf("downloads = %v, want %v", got, tc.downloads)
			}
			wantTotal := 0
			for _, n := range tc.downloads {
				wantTotal += n
			}
			if got := s.TotalDownloads(); got != wantTotal {
				t.Errorf("TotalDownloads = %d, want %d", got, wantTotal)
			}
			if got := s.BytesServed(); got != wantBytes {
				t.Errorf("BytesServed = %d, want %d", got, wantBytes)
			}
		})
	}
}
