// Package e2e drives the envd binary against real components: the managed
// buildkitd, Docker, the registry mirror scripts/setup.sh starts, and a
// package index the tests run. Set ENVD_E2E=1 to run it.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var (
	envdBin string
	// stateDir holds the XDG dirs of the envd under test, so it gets its own
	// managed buildkitd and leaves the user's alone.
	stateDir string
	// homeDir is HOME for the envd under test: its ~/.ssh/config is the one
	// `envd up` edits.
	homeDir string
	// goEnv is the go command's caches and settings as they were before setup moved HOME and the XDG dirs, for
	// the tests that run go (TestWheel): with the moved ones it would compile everything and fetch every module anew.
	goEnv   []string
	mirror  = envOr("ENVD_E2E_MIRROR", "http://127.0.0.1:5000")
	enabled = os.Getenv("ENVD_E2E") == "1"
)

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func TestMain(m *testing.M) {
	if !enabled {
		os.Exit(m.Run()) // every test skips itself
	}
	code, err := setup(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e setup:", err)
		code = 1
	}
	os.Exit(code)
}

func setup(m *testing.M) (int, error) {
	tmp, err := os.MkdirTemp("", "envd-e2e-bin-")
	if err != nil {
		return 1, err
	}
	defer os.RemoveAll(tmp)
	envdBin = filepath.Join(tmp, "envd")
	// Static, as make build links it: envd can then be its own agent (TestOneBinary).
	build := exec.Command("go", "build", "-o", envdBin, "../cmd/envd")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return 1, fmt.Errorf("go build envd: %v\n%s", err, out)
	}
	// envd finds the agent for dev images beside itself.
	agent := exec.Command("go", "build", "-o", filepath.Join(tmp, "envd-agent"), "../cmd/envd-agent")
	agent.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := agent.CombinedOutput(); err != nil {
		return 1, fmt.Errorf("go build envd-agent: %v\n%s", err, out)
	}
	os.Unsetenv("ENVD_AGENT")
	// envd is its own buildkitd (internal/bkdaemon): the tests run that,
	// unless ENVD_BUILDKITD names another.

	vars := []string{"GOCACHE", "GOMODCACHE", "GOPATH", "GOENV"}
	out, err := exec.Command("go", append([]string{"env"}, vars...)...).Output()
	if err != nil {
		return 1, fmt.Errorf("go env: %v", err)
	}
	for i, v := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if i < len(vars) && v != "" {
			goEnv = append(goEnv, vars[i]+"="+v)
		}
	}

	stateDir = os.Getenv("ENVD_E2E_STATE")
	if stateDir == "" {
		// Short: the builder's socket lives below it.
		if stateDir, err = os.MkdirTemp("/tmp", "envd-e2e-"); err != nil {
			return 1, err
		}
		defer os.RemoveAll(stateDir)
	}
	for _, x := range []string{"CONFIG", "DATA", "CACHE"} {
		os.Setenv("XDG_"+x+"_HOME", filepath.Join(stateDir, strings.ToLower(x)))
	}
	homeDir = filepath.Join(stateDir, "home")
	if err := os.MkdirAll(homeDir, 0o700); err != nil {
		return 1, err
	}
	os.Setenv("HOME", homeDir)
	defer func() {
		// The tests started the managed builder; stop it.
		if out, err := exec.Command(envdBin, "bootstrap", "--stop").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping the builder: %v\n%s", err, out)
		}
	}()
	if out, err := exec.Command(envdBin, "bootstrap", "--registry-mirror", mirror).CombinedOutput(); err != nil {
		return 1, fmt.Errorf("envd bootstrap: %v\n%s", err, out)
	}
	return m.Run(), nil
}

func requireE2E(t *testing.T) {
	t.Helper()
	if !enabled {
		t.Skip("end-to-end test: set ENVD_E2E=1 (and run scripts/setup.sh first)")
	}
}

// result is one run of the envd binary.
type result struct {
	stdout, stderr string
	code           int
	elapsed        time.Duration
}

func (r result) String() string {
	return fmt.Sprintf("exit %d after %s\n--- stdout\n%s--- stderr\n%s", r.code, r.elapsed, r.stdout, r.stderr)
}

// envd runs the binary in dir and returns what it did.
func envd(t *testing.T, dir string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, envdBin, args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String(), elapsed: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("running envd: %v", err)
	}
	return r
}

// mustEnvd runs envd and fails the test unless it exits 0.
func mustEnvd(t *testing.T, dir string, args ...string) result {
	t.Helper()
	r := envd(t, dir, args...)
	if r.code != 0 {
		t.Fatalf("envd %s: %s", strings.Join(args, " "), r)
	}
	return r
}

// buildMeta is envd build's --metadata-file.
type buildMeta struct {
	Image   string   `json:"image"`
	Cached  int      `json:"steps_cached"`
	Steps   int      `json:"steps"`
	Ran     []string `json:"steps_run"`
	Skipped bool     `json:"skipped"`

	PythonInstaller string             `json:"python_installer"`
	UVFrom          string             `json:"uv_from"`
	Notes           []string           `json:"notes"`
	Phases          map[string]float64 `json:"phases"`
}

// build runs envd build in dir and returns its metadata.
func build(t *testing.T, dir string, args ...string) buildMeta {
	t.Helper()
	meta := filepath.Join(t.TempDir(), "meta.json")
	mustEnvd(t, dir, append([]string{"build", "--progress", "plain", "--metadata-file", meta}, args...)...)
	data, err := os.ReadFile(meta)
	if err != nil {
		t.Fatal(err)
	}
	var m buildMeta
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// dockerCmd runs the Debian docker client, which talks to the local daemon.
func dockerCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bin := "/usr/bin/docker"
	if _, err := os.Stat(bin); err != nil {
		bin = "docker"
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	return string(out), err
}

// runInImage runs a command in a fresh container of image and returns its output.
func runInImage(t *testing.T, image string, cmd ...string) string {
	t.Helper()
	out, err := dockerCmd(t, append([]string{"run", "--rm", image}, cmd...)...)
	if err != nil {
		t.Fatalf("docker run %s %v: %v\n%s", image, cmd, err, out)
	}
	return out
}

func removeImage(t *testing.T, image string) {
	t.Cleanup(func() { dockerCmd(t, "rmi", "-f", image) })
}

// project writes files into a new build directory named name.
func project(t *testing.T, name string, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	for p, content := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
