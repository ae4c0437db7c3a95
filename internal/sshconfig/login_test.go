package sshconfig

import (
	"bytes"
	"encoding/binary"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// serveSSH runs a minimal sshd on 127.0.0.1 with the given host key that lets
// in only user's key and answers every exec with exit status 0. It returns
// the port.
func serveSSH(t *testing.T, hostPEM []byte, user ssh.PublicKey) int {
	t.Helper()
	hostSigner, err := ssh.ParsePrivateKey(hostPEM)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if meta.User() == "envd" && bytes.Equal(key.Marshal(), user.Marshal()) {
				return nil, nil
			}
			return nil, os.ErrPermission
		},
	}
	cfg.AddHostKey(hostSigner)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go serveConn(conn, cfg)
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

func serveConn(conn net.Conn, cfg *ssh.ServerConfig) {
	defer conn.Close()
	_, chans, reqs, err := ssh.NewServerConn(conn, cfg)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "")
			continue
		}
		ch, chReqs, err := nc.Accept()
		if err != nil {
			return
		}
		go func() {
			for req := range chReqs {
				if req.Type != "exec" {
					req.Reply(false, nil)
					continue
				}
				req.Reply(true, nil)
				ch.Write([]byte("ok\n"))
				ch.SendRequest("exit-status", false, binary.BigEndian.AppendUint32(nil, 0))
				ch.Close()
			}
		}()
	}
}

// TestLogin connects the real OpenSSH client through a managed block, envd's
// key and a pinned host key: no prompts, the pin survives a port change, and
// a wrong host key is refused.
func TestLogin(t *testing.T) {
	if _, err := os.Stat("/usr/bin/ssh"); err != nil {
		t.Skip("OpenSSH client not installed")
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "ssh", "config")
	key, err := EnsureUserKey(filepath.Join(dir, "envd"))
	if err != nil {
		t.Fatal(err)
	}
	known := KnownHosts{Path: filepath.Join(dir, "envd", "known_hosts")}
	hostPEM, hostPub, err := NewHostKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := known.Pin(Alias("demo"), hostPub); err != nil {
		t.Fatal(err)
	}

	runSSH := func() (string, error) {
		cmd := exec.Command("/usr/bin/ssh", "-F", cfg, "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "demo.envd", "true")
		cmd.Env = []string{"HOME=" + dir, "PATH=" + os.Getenv("PATH")} // no agent, no ~/.ssh of the tester
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	login := func(port int) {
		t.Helper()
		e := Entry{Name: "demo", HostName: "127.0.0.1", Port: port, User: "envd",
			IdentityFile: key.Path, KnownHostsFile: known.Path}
		if err := Add(cfg, e); err != nil {
			t.Fatal(err)
		}
		if out, err := runSSH(); err != nil || !strings.Contains(out, "ok") {
			t.Fatalf("ssh demo.envd on port %d: %v\n%s", port, err, out)
		}
	}

	login(serveSSH(t, hostPEM, key.Signer.PublicKey()))
	login(serveSSH(t, hostPEM, key.Signer.PublicKey())) // new port, same pin

	// Another host key on the same name must be refused, not prompted for.
	otherPEM, _, _ := NewHostKey()
	port := serveSSH(t, otherPEM, key.Signer.PublicKey())
	e := Entry{Name: "demo", HostName: "127.0.0.1", Port: port, User: "envd", IdentityFile: key.Path, KnownHostsFile: known.Path}
	if err := Add(cfg, e); err != nil {
		t.Fatal(err)
	}
	if out, err := runSSH(); err == nil || !strings.Contains(out, "Host key verification failed") {
		t.Errorf("ssh accepted an unpinned host key: %v\n%s", err, out)
	}
}
