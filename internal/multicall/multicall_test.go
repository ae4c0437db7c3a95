package multicall

import (
	"bytes"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunChoosesByName(t *testing.T) {
	tests := []struct {
		argv       []string
		ok         bool
		code       int
		out, err   string // substrings
		stdinInput string
	}{
		{argv: []string{"envd", "version"}, ok: false},
		{argv: []string{"/usr/local/bin/envd", "up"}, ok: false},
		{argv: []string{}, ok: false},
		{argv: []string{"/opt/envd/bin/envd-agent", "version"}, ok: true, code: 0, out: "v9.9.9\n"},
		{argv: []string{"envd-agent-linux-arm64", "version"}, ok: true, code: 0, out: "v9.9.9\n"},
		{argv: []string{"envd-agent", "nonsense"}, ok: true, code: 2, err: "unknown command"},
		{argv: []string{"/usr/bin/envd-handover"}, ok: true, code: 1, err: "must be the secret", stdinInput: "short\n"},
		{argv: []string{"buildctl", "build"}, ok: true, code: 2, err: "does only `buildctl [--addr unix://PATH] dial-stdio` and `debug workers`"},
		{argv: []string{"buildctl", "--addr", "tcp://127.0.0.1:1", "dial-stdio"}, ok: true, code: 2, err: "only unix://"},
		{argv: []string{"buildctl", "--addr", "unix:///nonexistent/buildkitd.sock", "dial-stdio"}, ok: true, code: 1, err: "no such file"},
		{argv: []string{"buildctl", "--addr", "unix:///nonexistent/buildkitd.sock", "debug", "workers"}, ok: true, code: 1, err: "buildctl debug workers:"},
		{argv: []string{"/usr/bin/buildkitd", "prune"}, ok: true, code: 2, err: "takes only --config, --root, --addr and --debug"},
		{argv: []string{"buildkitd", "--addr", "tcp://127.0.0.1:1"}, ok: true, code: 1, err: "unix://PATH only"},
		{argv: []string{"buildkitd", "--config", "/nonexistent/buildkitd.toml"}, ok: true, code: 1, err: "/nonexistent/buildkitd.toml"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.argv, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code, ok := Run(tt.argv, Streams{strings.NewReader(tt.stdinInput), &out, &errb}, "v9.9.9")
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if !ok {
				return
			}
			if code != tt.code || !strings.Contains(out.String(), tt.out) || !strings.Contains(errb.String(), tt.err) {
				t.Errorf("code %d, stdout %q, stderr %q; want code %d, stdout with %q, stderr with %q", code, out.String(), errb.String(), tt.code, tt.out, tt.err)
			}
		})
	}
}

// dial-stdio carries bytes both ways, passes on the end of stdin, and ends
// when the server closes.
func TestDialStdio(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "buildkitd.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		got, _ := io.ReadAll(c) // until dial-stdio half-closes
		c.Write([]byte("echo: " + string(got)))
		c.Close()
	}()
	var out, errb bytes.Buffer
	code, _ := Run([]string{"buildctl", "--addr", "unix://" + sock, "dial-stdio"}, Streams{strings.NewReader("ping"), &out, &errb}, "")
	if code != 0 || out.String() != "echo: ping" {
		t.Fatalf("code %d, stdout %q, stderr %q; want 0 and %q", code, out.String(), errb.String(), "echo: ping")
	}
}
