// Package sshtest holds what tests of the agent and its command need to
// speak ssh: a fresh key, as a signer and as the PEM a config file holds.
package sshtest

import (
	"testing"

	gossh "golang.org/x/crypto/ssh"

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
