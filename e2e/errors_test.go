package e2e

import (
	"bytes"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestFailingStepsAreExplained: a failing apt or pip step names its line in
// build.envd, shows the end of its output and its exit code, and tags nothing.
func TestFailingStepsAreExplained(t *testing.T) {
	requireE2E(t)
	srv := index(t, wheel{name: "alpha", version: "1.0"})
	tests := []struct {
		name, file string
		want       []string
	}{
		{
			name: "apt",
			file: `def build():
    base(image="debian:bookworm")
    install.apt_packages(name=["no-such-package-envd"])
`,
			want: []string{"build.envd:3:5: step failed", "apt-get install no-such-package-envd", "exit code 100", "Unable to locate package no-such-package-envd"},
		},
		{
			name: "pip",
			file: `def build():
    base(image="debian:bookworm")
    config.pip_index(url="` + srv.URL() + `", trust=True)
    install.python_packages(name=["no-such-wheel"])
`,
			want: []string{"build.envd:4:35: step failed", "resolve no-such-wheel", "exit code 1", "no-such-wheel was not found in the package registry"},
		},
		{
			name: "run",
			file: `def build():
    base(image="debian:bookworm")
    run(commands=["echo about to fail", "exit 7"])
`,
			want: []string{"build.envd:3:5: step failed", "exit code 7", "about to fail"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := "e2e-fail-" + tt.name
			dir := project(t, name, map[string]string{"build.envd": tt.file})
			r := envd(t, dir, "build", "--progress", "plain")
			if r.code != 1 {
				t.Fatalf("want exit 1: %s", r)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
			if strings.Contains(r.stderr, "goroutine ") || strings.Contains(r.stderr, "panic:") {
				t.Errorf("stack trace in output:\n%s", r.stderr)
			}
			if out, err := dockerCmd(t, "image", "inspect", name+":dev"); err == nil {
				t.Errorf("a failed build left an image tagged:\n%s", out)
			}
		})
	}
}

// TestInterruptCancelsBuild: Ctrl-C during a long step ends envd promptly.
func TestInterruptCancelsBuild(t *testing.T) {
	requireE2E(t)
	dir := project(t, "e2e-interrupt", map[string]string{
		"build.envd": `def build():
    base(image="debian:bookworm")
    run(commands=["echo zzz-$((40+2))", "sleep 300"])
`,
	})
	cmd := exec.Command(envdBin, "build", "--progress", "plain")
	cmd.Dir = dir
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until the step runs (its output, not its name, says zzz-42),
	// then interrupt as a terminal would.
	deadline := time.Now().Add(3 * time.Minute)
	for !strings.Contains(stderr.String(), "zzz-42") && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	start := time.Now()
	if code := interrupt(t, cmd, stderr); code != 130 {
		t.Errorf("exit code %d after SIGINT, want 130\n%s", code, stderr.String())
	}
	t.Logf("envd exited %.1fs after SIGINT", time.Since(start).Seconds())
}

// interrupt sends SIGINT as a terminal's Ctrl-C would and returns envd's
// exit code; envd must be gone within 30 s.
func interrupt(t *testing.T, cmd *exec.Cmd, stderr *lockedBuffer) int {
	t.Helper()
	cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("envd still running 30s after SIGINT:\n%s", stderr.String())
	}
	return cmd.ProcessState.ExitCode()
}

// lockedBuffer is a bytes.Buffer safe to read while a process writes to it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
