package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"envd.dev/envd/internal/compile"
	"envd.dev/envd/internal/ir"
)

func TestSensitiveMount(t *testing.T) {
	home := "/home/ann"
	tests := []struct {
		path string
		want string // part of the reason, "" = not sensitive
	}{
		{"/", "whole host"},
		{"/etc", "system directory (/etc)"},
		{"/etc/ssl", "system directory (/etc)"},
		{"/usr/local", "system directory (/usr)"},
		{"/lib64", "system directory"},
		{"/var/lib/docker", "system directory (/var)"},
		{"/var/run/docker.sock", "Docker socket"},
		{"/tmp/x/docker.sock", "Docker socket"},
		{"/root", "system directory (/root)"},
		{"/home", "parent of your home"},
		{"/home/ann", "whole home"},
		{"/home/ann/.ssh", "ssh keys"},
		{"/home/ann/data", ""},
		{"/home/bob/data", ""},
		{"/data/sets", ""},
		{"/etcetera", ""},
		{"/tmp/proj/data", ""},
	}
	for _, tt := range tests {
		got := sensitiveMount(tt.path, home)
		if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("sensitiveMount(%q) = %q, want %q", tt.path, got, tt.want)
		}
	}
	// Root's own files are its home, not a system directory.
	if got := sensitiveMount("/root/data", "/root"); got != "" {
		t.Errorf("sensitiveMount(/root/data) for root = %q, want none", got)
	}
}

// The ssh port envd publishes itself and the one ir refuses to expose are one.
func TestSSHPortAgrees(t *testing.T) {
	if ir.SSHPort != compile.SSHPort {
		t.Fatalf("ir.SSHPort %d != compile.SSHPort %d", ir.SSHPort, compile.SSHPort)
	}
}

// TestUpMounts: envd up checks runtime.mount before anything starts (Docker
// is not reachable here, so reaching it means the mounts passed), says every
// host path it mounts, and resolves relative sources in the build directory.
func TestUpMounts(t *testing.T) {
	isolate(t)
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("ENVD_AGENT", hostAgent(t))
	file := func(mounts ...string) string {
		s := "def build():\n    base(os=\"debian12\", language=\"python3\")\n"
		for _, m := range mounts {
			s += "    " + m + "\n"
		}
		return s
	}
	lib := "def mounts():\n    runtime.mount(host_path=\"/etc\", envd_path=\"/hostetc\")\n"
	tests := []struct {
		name  string
		file  string
		args  []string
		want  []string // in stderr
		made  string   // a directory the up must have created, relative to the project
		code  int
		isnot string // must not appear in stderr
	}{
		{
			name: "root without consent", file: file(`runtime.mount(host_path="/", envd_path="/host")`),
			code: 1, want: []string{"build.envd:3:5:", "read-write access to /: the whole host file system", "envd up --allow-mount /"},
			isnot: "cannot reach Docker",
		},
		{
			name: "root with consent", file: file(`runtime.mount(host_path="/", envd_path="/host")`), args: []string{"--allow-mount", "/"},
			code: 1, want: []string{"envd: mounting / at /host (read-write)", "cannot reach Docker"},
		},
		{
			name: "docker socket", file: file(`runtime.mount(host_path="/var/run/docker.sock", envd_path="/var/run/docker.sock")`),
			code: 1, want: []string{"build.envd:3:5:", "Docker socket", "--allow-mount /var/run/docker.sock"},
		},
		{
			name: "home itself", file: file(`runtime.mount(host_path="~", envd_path="/h")`),
			code: 1, want: []string{"build.envd:3:5:", "your whole home directory", "--allow-mount " + home},
		},
		{
			name: "system directory from an included module", file: "lib = include(path=\"lib.envd\")\n" + file("lib.mounts()"),
			code: 1, want: []string{"lib.envd:2:5:", "system directory (/etc)", "--allow-mount /etc"},
		},
		{
			name: "relative source", file: file(`runtime.mount(host_path="data/sets", envd_path="/data")`),
			code: 1, made: "data/sets", want: []string{"/proj/data/sets at /data (read-write)", "(the project directory)", "cannot reach Docker"},
		},
		{
			name: "missing source elsewhere", file: file(`runtime.mount(host_path="/nonexistent-envd-in/x", envd_path="/x")`),
			code: 1, want: []string{"build.envd:3:5:", "mount source /nonexistent-envd-in/x does not exist", "mkdir -p /nonexistent-envd-in/x"},
			isnot: "cannot reach Docker",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeProject(t, map[string]string{"build.envd": tt.file, "lib.envd": lib})
			code, _, errOut := runEnvd(t, dir, append([]string{"up", "-d", "--ca-bundle", ""}, tt.args...)...)
			if code != tt.code {
				t.Fatalf("exit code %d, want %d\nstderr: %s", code, tt.code, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
			if tt.isnot != "" && strings.Contains(errOut, tt.isnot) {
				t.Errorf("stderr has %q: the up went on\n%s", tt.isnot, errOut)
			}
			if tt.made != "" {
				if st, err := os.Stat(filepath.Join(dir, tt.made)); err != nil || !st.IsDir() {
					t.Errorf("%s not created in the project: %v", tt.made, err)
				}
			}
		})
	}
	if _, err := os.Stat("/nonexistent-envd-in"); err == nil {
		t.Errorf("envd created /nonexistent-envd-in")
	}
}
