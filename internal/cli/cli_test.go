package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runEnvd runs the CLI in-process in dir and returns exit code and output.
func runEnvd(t *testing.T, dir string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	wd, _ := os.Getwd()
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	defer os.Chdir(wd)
	code := run(context.Background(), args, streams{out: &out, err: &errb})
	return code, out.String(), errb.String()
}

func writeProject(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "proj")
	for name, content := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// isolate points envd's config, state and Docker at a scratch place, so a
// test can never reach a real builder or daemon by accident.
func isolate(t *testing.T) {
	t.Helper()
	home := t.TempDir()
	for _, x := range []string{"XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"} {
		t.Setenv(x, filepath.Join(home, x))
	}
	t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(home, "no-docker.sock"))
	t.Setenv("ENVD_AGENT", "")
	t.Setenv("PATH", home)                  // no envd-agent to be found
	setSelf(t, filepath.Join(home, "envd")) // and envd is not one either
}

// setSelf makes findAgent see path as envd's own binary.
func setSelf(t *testing.T, path string) {
	old := selfExecutable
	selfExecutable = func() (string, error) { return path, nil }
	t.Cleanup(func() { selfExecutable = old })
}

// TestBuildRejectsBadInput: every mistake a user can make before the build
// starts exits 1 (2 for command-line mistakes) naming the place and a fix.
func TestBuildRejectsBadInput(t *testing.T) {
	isolate(t)
	tests := []struct {
		name  string
		files map[string]string
		args  []string
		code  int
		want  []string
	}{
		{
			name:  "syntax error",
			files: map[string]string{"build.envd": "def build():\n    base(image=\"debian:bookworm\"\n"},
			code:  1, want: []string{"build.envd:3:"},
		},
		{
			name:  "unknown function",
			files: map[string]string{"build.envd": "def build():\n    bse(image=\"debian:bookworm\")\n"},
			code:  1, want: []string{"build.envd:2:5", "bse", `did you mean "base"`},
		},
		{
			name:  "unknown member",
			files: map[string]string{"build.envd": "def build():\n    install.python_pakages(name=[\"six\"])\n"},
			code:  1, want: []string{"build.envd:2:", "python_pakages", `did you mean "python_packages"`},
		},
		{
			name:  "unknown keyword",
			files: map[string]string{"build.envd": "def build():\n    install.python_packages(nme=[\"six\"])\n"},
			code:  1, want: []string{"build.envd:2:", `"nme"`, `did you mean "name"`},
		},
		{
			name:  "wrong type",
			files: map[string]string{"build.envd": "def build():\n    install.python_packages(name=3)\n"},
			code:  1, want: []string{"build.envd:2:", "name", "int"},
		},
		{
			name:  "no build function",
			files: map[string]string{"build.envd": "def setup():\n    pass\n"},
			code:  1, want: []string{"build.envd", `no function "build"`},
		},
		{
			name:  "function named by -f missing",
			files: map[string]string{"build.envd": "def build():\n    pass\n"},
			args:  []string{"-f", "build.envd:gpu"}, code: 1, want: []string{`no function "gpu"`},
		},
		{
			name:  "requirements file missing",
			files: map[string]string{"build.envd": "def build():\n    base(image=\"debian:bookworm\")\n    install.python_packages(requirements=\"reqs.txt\")\n"},
			code:  1, want: []string{"build.envd:3:", `requirements file "reqs.txt" not found`, "hint:"},
		},
		{
			name:  "injection in a package name",
			files: map[string]string{"build.envd": "def build():\n    install.python_packages(name=[\"numpy; rm -rf /\"])\n"},
			code:  1, want: []string{"build.envd:2:", `entry "numpy; rm -rf /" holds ";"`, "never to a shell"},
		},
		{
			name:  "no build file",
			files: map[string]string{"other.txt": ""},
			code:  1, want: []string{"no build file", "build.envd"},
		},
		{
			name:  "bad output",
			files: map[string]string{"build.envd": "def build():\n    pass\n"},
			args:  []string{"--output", "type=oci"}, code: 2, want: []string{"type=oci needs dest=FILE"},
		},
		{
			name:  "bad progress",
			files: map[string]string{"build.envd": "def build():\n    pass\n"},
			args:  []string{"--progress", "fancy"}, code: 2, want: []string{`--progress "fancy"`},
		},
		{
			name:  "unknown flag",
			files: map[string]string{"build.envd": "def build():\n    pass\n"},
			args:  []string{"--fast"}, code: 2, want: []string{"unknown flag: --fast"},
		},
		{
			name:  "dev environment without the agent",
			files: map[string]string{"build.envd": "def build():\n    base(os=\"debian12\", language=\"python3\")\n"},
			code:  1, want: []string{"envd-agent not found", "make build", "ENVD_AGENT"},
		},
		{
			name:  "NUL byte",
			files: map[string]string{"build.envd": "def build():\n    base(image=\"debian:bookworm\")\n  \x00 install.apt_packages(name=[\"x\"])\n"},
			code:  1, want: []string{"build.envd:3:3: NUL byte", "hint:"},
		},
		{
			name:  "memory bomb",
			files: map[string]string{"build.envd": "def build():\n    base(image=\"debian:bookworm\")\n    l = [0] * 1000000000\n"},
			code:  1, want: []string{"build.envd:3:9:", "memory limit of 1.0 GiB", "hint:"},
		},
		{
			name:  "string doubled",
			files: map[string]string{"build.envd": "def build():\n    base(image=\"debian:bookworm\")\n    s = \"x\"\n    for i in range(40):\n        s = s + s\n"},
			code:  1, want: []string{"build.envd:5:13:", "memory limit", "hint:"},
		},
		{
			name:  "def shadows a builtin",
			files: map[string]string{"build.envd": "def base(os):\n    pass\n\ndef build():\n    base(os=\"debian12\")\n"},
			code:  1, want: []string{"build.envd:1:5:", `def "base" would replace envd's builtin base`},
		},
		{
			name:  "ssh port exposed",
			files: map[string]string{"build.envd": "def build():\n    base(os=\"debian12\", language=\"python3\")\n    runtime.expose(envd_port=2222)\n"},
			code:  1, want: []string{"build.envd:3:5:", "ssh port"},
		},
		{
			name:  "tag with a space",
			files: map[string]string{"build.envd": "def build():\n    base(image=\"debian:bookworm\")\n"},
			args:  []string{"-t", "BAD TAG"}, code: 2, want: []string{`-t "BAD TAG" is not a valid image name`, "myproject:dev"},
		},
		{
			name:  "tag in capitals",
			files: map[string]string{"build.envd": "def build():\n    base(image=\"debian:bookworm\")\n"},
			args:  []string{"-t", "Basic:Dev"}, code: 2, want: []string{`-t "Basic:Dev" is not a valid image name`, "lower-case"},
		},
		{
			name:  "copy from an image, relative source",
			files: map[string]string{"build.envd": "def build():\n    base(image=\"debian:bookworm\")\n    io.copy(\"bin/uv\", \"/usr/local/bin/uv\", image=\"ghcr.io/astral-sh/uv:0.4.0\")\n"},
			code:  1, want: []string{"build.envd:3:5:", `copy source "bin/uv" is not an absolute path (in the image ghcr.io/astral-sh/uv:0.4.0)`, "hint:"},
		},
		{
			name:  "docker not reachable",
			files: map[string]string{"build.envd": "def build():\n    base(image=\"debian:bookworm\")\n"},
			code:  1, want: []string{"cannot reach Docker", "--output type=oci"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeProject(t, tt.files)
			code, out, errOut := runEnvd(t, dir, append([]string{"build", "--ca-bundle", ""}, tt.args...)...)
			if code != tt.code {
				t.Fatalf("exit code %d, want %d\nstderr: %s", code, tt.code, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
			if out != "" {
				t.Errorf("stdout should be empty on failure, got %q", out)
			}
			if strings.Contains(errOut, "goroutine") || strings.Contains(errOut, "panic") {
				t.Errorf("stack trace in output:\n%s", errOut)
			}
		})
	}
}

// io.copy(image=...) reads no file of the build directory: its source
// need not exist there, and the plan copies it from the image.
func TestDryRunCopyFromImage(t *testing.T) {
	isolate(t)
	dir := writeProject(t, map[string]string{"build.envd": "def build():\n    base(image=\"debian:bookworm\")\n" +
		"    io.copy(source=\"/bin/micromamba\", target=\"/usr/local/bin/micromamba\", image=\"mambaorg/micromamba:1.0.0\")\n"})
	code, out, errOut := runEnvd(t, dir, "build", "--dry-run")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, w := range []string{"image docker.io/mambaorg/micromamba:1.0.0", "copy /bin/micromamba from docker.io/mambaorg/micromamba:1.0.0 to /usr/local/bin/micromamba [build.envd:3:5]"} {
		if !strings.Contains(out, w) {
			t.Errorf("plan lacks %q:\n%s", w, out)
		}
	}
}

// TestUpNeedsDev: envd up on an image without dev says so at the base()
// call, or at the build function when it never calls base() (which means
// base(), without dev, as in the original envd), and says how to fix it.
// It fails before Docker is reached.
func TestUpNeedsDev(t *testing.T) {
	isolate(t)
	tests := []struct {
		name, file string
		want       []string
	}{
		{"no base", "def build():\n    install.python_packages(name=[\"six\"])\n",
			[]string{"build.envd:1:1: envd up needs a dev environment", "never calls base()", "base(dev=True)", `base(os="ubuntu22.04", language="python3")`}},
		{"bare base", "def build():\n    base()\n",
			[]string{"build.envd:2:5: envd up needs a dev environment", "base() and base(image=...) default to", "base(dev=True)"}},
		{"image", "def build():\n    base(image=\"debian:bookworm\")\n",
			[]string{"build.envd:2:5: envd up needs a dev environment", `base(image="...", dev=True)`}},
		{"os dev=False", "def build():\n    base(os=\"debian12\", dev=False)\n",
			[]string{"build.envd:2:5: envd up needs a dev environment", "remove dev=False"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeProject(t, map[string]string{"build.envd": tt.file})
			code, _, errOut := runEnvd(t, dir, "up", "--ca-bundle", "")
			if code != 1 {
				t.Fatalf("exit code %d, want 1\nstderr: %s", code, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
		})
	}
}

func TestProjectName(t *testing.T) {
	tests := map[string]string{
		"/home/me/My Project": "my-project",
		"/x/mnist_v2":         "mnist_v2",
		"/x/...":              "envd",
		"/x/Äpfel":            "pfel",
	}
	for dir, want := range tests {
		if got := projectName(dir); got != want {
			t.Errorf("projectName(%q) = %q, want %q", dir, got, want)
		}
	}
}

func TestContextCommands(t *testing.T) {
	isolate(t)
	dir := t.TempDir()
	steps := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"context", "ls"}, 0, "default"},
		{[]string{"context", "create", "remote", "--builder", "tcp://127.0.0.1:1234"}, 0, "context remote created"},
		{[]string{"context", "create", "remote", "--builder", "tcp://127.0.0.1:1234"}, 1, "remote"},
		{[]string{"context", "create", "bad", "--builder", "http://x"}, 1, "http://x"},
		{[]string{"context", "use", "remote"}, 0, "now using context remote"},
		{[]string{"context", "ls", "-o", "json"}, 0, `"current": true`},
		{[]string{"context", "use", "nope"}, 1, "nope"},
		{[]string{"context", "rm", "remote"}, 0, "context remote removed"},
		{[]string{"context", "ls"}, 0, "*"},
		{[]string{"context", "rm", "default"}, 1, "default"},
	}
	for _, s := range steps {
		code, out, errOut := runEnvd(t, dir, s.args...)
		if code != s.code || !strings.Contains(out+errOut, s.want) {
			t.Errorf("envd %v: exit %d, output %q%q; want exit %d containing %q", s.args, code, out, errOut, s.code, s.want)
		}
	}
}

func TestUnreadableInput(t *testing.T) {
	dir := t.TempDir()
	_, statErr := os.Lstat(filepath.Join(dir, "data", "gone.bin"))
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"removed file", statErr, "cannot read " + filepath.Join(dir, "data", "gone.bin") + ", which the build uses: no such file or directory\n  hint:"},
		{"other error", errors.New("boom"), "boom"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := unreadableInput(tc.err).Error(); !strings.HasPrefix(got, tc.want) {
				t.Errorf("got %q, want it to start with %q", got, tc.want)
			}
		})
	}
}
