package e2e

// Bad input and host mounts (issue 13), with the real envd binary and Docker:
// what the user sees, what is left behind.

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// noImages fails when Docker has an image of the repository repo.
func noImages(t *testing.T, repo string) {
	t.Helper()
	out, err := dockerCmd(t, "images", "--format", "{{.Repository}}:{{.Tag}}", repo)
	if err != nil {
		t.Fatalf("docker images: %v\n%s", err, out)
	}
	if strings.TrimSpace(out) != "" {
		t.Errorf("images left in Docker:\n%s", out)
	}
}

// noContainer fails when Docker has a container whose name contains name.
func noContainer(t *testing.T, name string) {
	t.Helper()
	out, err := dockerCmd(t, "ps", "-a", "--format", "{{.Names}}")
	if err != nil {
		t.Fatalf("docker ps: %v\n%s", err, out)
	}
	for _, n := range strings.Fields(out) {
		if strings.Contains(n, name) {
			t.Errorf("container %s was created", n)
		}
	}
}

func wantStderr(t *testing.T, r result, code int, want ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("want exit %d: %s", code, r)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
		}
	}
	if strings.Contains(r.stderr, "goroutine ") || strings.Contains(r.stderr, "panic:") {
		t.Errorf("stack trace in output:\n%s", r.stderr)
	}
}

// TestInputNULByte: a NUL byte used to end the file silently (exit 0, the
// lines after it ignored); now it is an error at its line.
func TestInputNULByte(t *testing.T) {
	requireE2E(t)
	dir := project(t, "in-nul", map[string]string{
		"build.envd": "def build():\n    base(image=\"debian:bookworm\")\n\x00 garbage ((( \n    install.apt_packages(name=[\"curl\"])\n",
	})
	r := envd(t, dir, "build", "--progress", "plain")
	wantStderr(t, r, 1, "build.envd:3:1: NUL byte in the build file", "hint:")
	noImages(t, "in-nul")
}

// TestInputMemoryBomb: evaluation that would take the machine's memory
// stops quickly at its line, and envd's own memory stays bounded.
func TestInputMemoryBomb(t *testing.T) {
	requireE2E(t)
	const head = "def build():\n    base(image=\"debian:bookworm\")\n"
	tests := []struct{ name, body, want string }{
		{"list", "    l = [0] * 1000000000\n", "build.envd:3:9:"},
		{"doubled string", "    s = \"x\"\n    for i in range(40):\n        s = s + s\n", "build.envd:5:13:"},
		{"join", "    l = [\"x\" * 1000000] * 5000\n    s = \"\".join(l)\n", "build.envd:4:9:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := project(t, "in-mem", map[string]string{"build.envd": head + tt.body})
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, envdBin, "build", "--progress", "plain")
			cmd.Dir = dir
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			start := time.Now()
			err := cmd.Run()
			elapsed := time.Since(start)
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Fatalf("want exit 1, got %v after %s\n%s", err, elapsed, stderr.String())
			}
			r := result{stderr: stderr.String(), code: 1}
			wantStderr(t, r, 1, tt.want, "memory", "hint:")
			if elapsed > 30*time.Second {
				t.Errorf("took %s", elapsed)
			}
			// Linux reports the peak resident set in KiB: the bound is 1 GiB
			// of evaluation, at worst twice that before envd gives up.
			if rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10; rss > 3<<30 {
				t.Errorf("envd grew to %d MiB", rss>>20)
			}
			noImages(t, "in-mem")
		})
	}
}

// TestInputBadTag: a bad -t was found only after the whole build and left a
// stray image; now it is refused (exit 2) before anything is built.
func TestInputBadTag(t *testing.T) {
	requireE2E(t)
	dir := project(t, "in-tag", map[string]string{
		"build.envd": "def build():\n    base(image=\"debian:bookworm\")\n    run(commands=[\"echo built > /built\"])\n",
	})
	for _, args := range [][]string{
		{"build", "-t", "BAD TAG"},
		{"build", "-t", "Basic:Dev"},
		{"up", "-d", "-t", "Basic:Dev"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := envd(t, dir, append(args, "--progress", "plain")...)
			wantStderr(t, r, 2, "is not a valid image name", "e.g. myproject:dev")
			if strings.Contains(r.stderr, "transferring") || strings.Contains(r.stderr, "[internal]") {
				t.Errorf("the build started:\n%s", r.stderr)
			}
		})
	}
	noImages(t, "in-tag")
	noImages(t, "basic")
	noContainer(t, "in-tag")
}

// TestInputExposeSSHPort: the ssh port was published twice unseen.
func TestInputExposeSSHPort(t *testing.T) {
	requireE2E(t)
	dir := project(t, "in-expose", map[string]string{
		"build.envd": "def build():\n    base(os=\"debian12\", language=\"python3\")\n    runtime.expose(envd_port=2222)\n",
	})
	r := envd(t, dir, "up", "-d", "--progress", "plain")
	wantStderr(t, r, 1, "build.envd:3:5: envd_port 2222 is the environment's ssh port")
	noContainer(t, "in-expose")
	noImages(t, "in-expose")
}

// TestInputMountRoot: runtime.mount("/") mounted the whole host read-write
// without a word; now envd up refuses it at the line, before anything starts.
func TestInputMountRoot(t *testing.T) {
	requireE2E(t)
	dir := project(t, "in-mount", map[string]string{
		"build.envd": "def build():\n    base(os=\"debian12\", language=\"python3\")\n    runtime.mount(host_path=\"/\", envd_path=\"/host\")\n",
	})
	r := envd(t, dir, "up", "-d", "--progress", "plain")
	wantStderr(t, r, 1, "build.envd:3:5:", "read-write access to /", "envd up --allow-mount /")
	noContainer(t, "in-mount")
	noImages(t, "in-mount")
}

// TestInputRelativeMount: a relative runtime.mount source used to be made in
// the current directory; it is the build directory's, and up says so.
func TestInputRelativeMount(t *testing.T) {
	requireE2E(t)
	name := "in-relmount"
	dir := project(t, name, map[string]string{
		"build.envd": "def build():\n    base(os=\"debian12\", language=\"python3\")\n    runtime.mount(host_path=\"data/sets\", envd_path=\"/data\")\n",
	})
	t.Cleanup(func() {
		envd(t, dir, "destroy", name)
		dockerCmd(t, "rmi", "-f", name+":dev")
	})
	elsewhere := t.TempDir()
	r := envd(t, elsewhere, "up", "-d", "--progress", "plain", "-p", dir)
	if r.code != 0 {
		t.Fatalf("up: %s", r)
	}
	src := filepath.Join(dir, "data", "sets")
	if !strings.Contains(r.stderr, "envd: mounting "+src+" at /data (read-write)") {
		t.Errorf("up does not say what it mounts:\n%s", r.stderr)
	}
	if _, err := os.Stat(filepath.Join(elsewhere, "data")); err == nil {
		t.Error("the mount source was made in the current directory")
	}
	mustEnvd(t, dir, "exec", name, "--", "sh", "-c", "echo from-env > /data/f")
	if data, err := os.ReadFile(filepath.Join(src, "f")); err != nil || strings.TrimSpace(string(data)) != "from-env" {
		t.Errorf("file written in /data not in %s: %q %v", src, data, err)
	}
}
