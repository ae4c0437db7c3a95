package cli

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestRewriteShorthands(t *testing.T) {
	for _, tc := range []struct{ in, want []string }{
		{[]string{"build", "-ec", "reg/c", "-ic=reg/d"}, []string{"build", "--export-cache", "reg/c", "--import-cache=reg/d"}},
		{[]string{"exec", "x", "--", "tool", "-ec"}, []string{"exec", "x", "--", "tool", "-ec"}},
		{[]string{"build", "-t", "x:dev"}, []string{"build", "-t", "x:dev"}},
	} {
		if got := rewriteShorthands(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("rewriteShorthands(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestOriginalBuilder(t *testing.T) {
	for _, tc := range []struct {
		kind, addr, want, errHas string
	}{
		{"tcp", "10.0.0.5:1234", "tcp://10.0.0.5:1234", ""},
		{"tcp", "tcp://10.0.0.5:1234", "tcp://10.0.0.5:1234", ""},
		{"unix", "/run/buildkit/buildkitd.sock", "unix:///run/buildkit/buildkitd.sock", ""},
		{"docker-container", "buildkitd", "docker-container://buildkitd", ""},
		{"unix", "run/bk.sock", "", "absolute path"},
		{"tcp", "", "", "needs --builder-address"},
		{"kube-pod", "bk-0", "", "--runtime kubernetes"},
		{"moby-worker", "x", "", "not supported"},
		{"ssh", "h", "", "the kinds are"},
	} {
		got, err := originalBuilder(tc.kind, tc.addr)
		if tc.errHas != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("originalBuilder(%q, %q): err %v, want one containing %q", tc.kind, tc.addr, err, tc.errHas)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("originalBuilder(%q, %q) = %q, %v; want %q", tc.kind, tc.addr, got, err, tc.want)
		}
	}
}

func TestNameOrProject(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "My Project")
	for _, tc := range []struct {
		args       []string
		name, path string
		want       string
	}{
		{[]string{"a"}, "", ".", "a"},
		{nil, "b", ".", "b"},
		{nil, "", dir, "my-project"},
	} {
		if got, err := nameOrProject(tc.args, tc.name, tc.path); err != nil || got != tc.want {
			t.Errorf("nameOrProject(%q, %q, %q) = %q, %v; want %q", tc.args, tc.name, tc.path, got, err, tc.want)
		}
	}
}

// The original's command lines parse, and their mistakes are usage errors.
func TestOriginalCommandLines(t *testing.T) {
	isolate(t)
	dir := t.TempDir()
	for _, s := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"context", "create", "--name", "ci", "--builder", "tcp", "--builder-address", "127.0.0.1:1234", "--use"}, 0, "context ci created"},
		{[]string{"context", "ls"}, 0, "tcp://127.0.0.1:1234"},
		{[]string{"context", "create", "--name", "x", "--builder", "tcp"}, 2, "needs --builder-address"},
		{[]string{"context", "create", "a", "--name", "b"}, 2, "give the context's name once"},
		{[]string{"context", "use", "default"}, 0, "default"},
		{[]string{"build", "--platform", "linux/s390x"}, 2, "envd builds linux/amd64 and linux/arm64 images"},
		{[]string{"exec", "--name", "x"}, 2, "--name goes with --command"},
		{[]string{"destroy", "a", "--name", "b"}, 2, "differ"},
		{[]string{"env", "ls", "--help"}, 0, "List environments"},
		{[]string{"build", "-ec", "type=nfs,ref=x", "--help"}, 0, "--export-cache"},
	} {
		code, out, errOut := runEnvd(t, dir, s.args...)
		if code != s.code || !strings.Contains(out+errOut, s.want) {
			t.Errorf("envd %v: exit %d, output %q%q; want exit %d containing %q", s.args, code, out, errOut, s.code, s.want)
		}
	}
}
