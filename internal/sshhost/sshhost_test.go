package sshhost

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Host
		wantErr string
	}{
		{in: "ssh://gpu-box", want: Host{Dest: "gpu-box"}},
		{in: "ssh://alice@10.0.0.5", want: Host{Dest: "10.0.0.5", User: "alice"}},
		{in: "ssh://alice@gpu.example.org:2222", want: Host{Dest: "gpu.example.org", User: "alice", Port: 2222}},
		{in: "ssh://[fe80::1]:22", want: Host{Dest: "fe80::1", Port: 22}},
		{in: "ssh://alice@gpu/", want: Host{Dest: "gpu", User: "alice"}},
		{in: "gpu-box", wantErr: "not an ssh:// address"},
		{in: "tcp://gpu:22", wantErr: "not an ssh:// address"},
		{in: "ssh://gpu/path", wantErr: "no path"},
		{in: "ssh://alice:secret@gpu", wantErr: "never takes a password"},
		{in: "ssh://gpu:99999", wantErr: "bad port"},
		{in: "ssh://", wantErr: "no host name"},
		{in: "ssh://-oProxyCommand=x", wantErr: "no host name"},
		{in: "ssh://-x@gpu", wantErr: "bad user name"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := Parse(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "hint:") {
					t.Fatalf("Parse(%q) = %v, %v; want an error with %q and a hint", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Parse(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			}
			if again, err := Parse(got.String()); err != nil || again != got {
				t.Fatalf("String() %q does not parse back: %+v, %v", got.String(), again, err)
			}
		})
	}
}

func TestArgs(t *testing.T) {
	h := Host{Dest: "gpu", User: "alice", Port: 2222}
	got := h.Args("docker", "system", "dial-stdio")
	tail := []string{"-l", "alice", "-p", "2222", "--", "gpu", "docker", "system", "dial-stdio"}
	if !slices.Equal(got[len(got)-len(tail):], tail) || !slices.Contains(got, "BatchMode=yes") {
		t.Fatalf("Args = %q", got)
	}
	fw := h.forwardArgs("127.0.0.1:8888")
	i := slices.Index(fw, "-W")
	if i < 0 || fw[i+1] != "127.0.0.1:8888" || !slices.Equal(fw[len(fw)-2:], []string{"--", "gpu"}) {
		t.Fatalf("forwardArgs = %q", fw)
	}
	if got := (Host{Dest: "gpu"}).Args(); slices.Contains(got, "-l") || slices.Contains(got, "-p") {
		t.Fatalf("Args of a bare alias = %q: the ssh config decides user and port", got)
	}
}

// fakeSSH is an "ssh" that runs the remote command here, or fails as
// ssh would, as the script says.
func fakeSSH(t *testing.T, script string) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ssh")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	old := Binary
	Binary = bin
	t.Cleanup(func() { Binary = old })
}

func TestDialStdio(t *testing.T) {
	// Everything after "--" and the destination is the remote command.
	fakeSSH(t, `while [ "$1" != "--" ]; do shift; done; shift 2; exec "$@"`)
	c, err := (Host{Dest: "gpu"}).DialStdio(context.Background(), "tr", "a-z", "A-Z")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, "hello\n"); err != nil {
		t.Fatal(err)
	}
	c.(interface{ CloseWrite() error }).CloseWrite()
	out, err := io.ReadAll(c)
	if err != nil || string(out) != "HELLO\n" {
		t.Fatalf("read %q, %v", out, err)
	}
	c.Close()
}

func TestErrorsExplained(t *testing.T) {
	for _, tc := range []struct {
		name, script string
		kind         error
	}{
		{"refused key", `echo "alice@gpu: Permission denied (publickey)." >&2; exit 255`, ErrAuth},
		{"unreachable", `echo "ssh: connect to host gpu port 22: Connection refused" >&2; exit 255`, ErrUnreachable},
		{"host key", `echo "Host key verification failed." >&2; exit 255`, ErrHostKey},
		{"no docker", `echo "bash: line 1: docker: command not found" >&2; exit 127`, ErrNoDocker},
		{"docker down", `echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?" >&2; exit 1`, ErrNoDocker},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fakeSSH(t, tc.script)
			h := Host{Dest: "gpu", User: "alice"}
			_, err := h.Run(context.Background(), "docker", "version")
			if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), "hint:") {
				t.Fatalf("Run: %v; want %v with a hint", err, tc.kind)
			}
			c, err := h.DialStdio(context.Background(), "docker", "system", "dial-stdio")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := io.ReadAll(c); !errors.Is(err, tc.kind) {
				t.Fatalf("reading the connection: %v; want %v", err, tc.kind)
			}
		})
	}
}
