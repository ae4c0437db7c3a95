// Package sshtest holds what tests need to speak ssh: a fresh key, as a
// signer and as the PEM a config file holds, and an ssh-agent.
package sshtest

import (
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"path/filepath"
	"testing"

	gossh "golang.org/x/crypto/ssh"
	sshagent "golang.org/x/crypto/ssh/agent"

	"envd.dev/envd/internal/sshconfig"
)

// NewKey returns a fresh ed25519 key: a signer, and its private PEM.
func NewKey(t testing.TB) (gossh.Signer, []byte) {
	t.Helper()
	privatePEM, _, err := sshconfig.NewHostKey()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := gossh.ParsePrivateKey(privatePEM)
	if err != nil {
		t.Fatal(err)
	}
	return signer, privatePEM
}

// ServeAgent serves, for the test's duration, an ssh-agent holding one
// fresh key on a unix socket in a temporary directory, as the user's agent
// would be; it returns the socket's path, for SSH_AUTH_SOCK.
func ServeAgent(t testing.TB) string {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keyring := sshagent.NewKeyring()
	if err := keyring.Add(sshagent.AddedKey{PrivateKey: priv}); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
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
			go func() { sshagent.ServeAgent(keyring, conn); conn.Close() }()
		}
	}()
	return sock
}
