//go:build unix

package sshclient

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	envdagent "envd.dev/envd/internal/agent"
	"envd.dev/envd/internal/testing/sshtest"
)

// The user's ssh-agent reaches the environment only when the target asks
// for it, as `ForwardAgent` does for OpenSSH.
func TestForwardAgentOnlyWhenAsked(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("SSH_AUTH_SOCK", "") // the server's sessions must not inherit ours
	target := startServer(t, dir)
	t.Setenv("SSH_AUTH_SOCK", sshtest.ServeAgent(t))

	for _, tt := range []struct {
		forward bool
		want    string
	}{{false, "none"}, {true, "socket"}} {
		target.ForwardAgent = tt.forward
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := Dial(ctx, target)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		code, err := Run(c, `if test -S "$SSH_AUTH_SOCK"; then echo socket; else echo none; fi`, strings.NewReader(""), &out, io.Discard)
		c.Close()
		if err != nil || code != 0 || strings.TrimSpace(out.String()) != tt.want {
			t.Errorf("ForwardAgent %v: exit %d, %v, output %q; want %s", tt.forward, code, err, out.String(), tt.want)
		}
	}
}

// startServer runs envd's agent sshd and returns a target for it.
func startServer(t *testing.T, dir string) Target {
	t.Helper()
	host, hostPEM := sshtest.NewKey(t)
	client, _ := sshtest.NewKey(t)
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg := &envdagent.Config{
		SSH: envdagent.SSHConfig{
			HostKey:        write("host_key", hostPEM),
			AuthorizedKeys: write("authorized_keys", ssh.MarshalAuthorizedKey(client.PublicKey())),
			Shell:          "/bin/sh",
		},
		Workdir: dir,
		User:    &envdagent.User{Name: "envd", UID: os.Getuid(), GID: os.Getgid(), Home: dir},
	}
	srv, err := envdagent.NewServer(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return Target{Addr: ln.Addr().String(), User: "envd", Signer: client, HostKey: host.PublicKey()}
}
