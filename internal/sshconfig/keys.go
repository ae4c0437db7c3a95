package sshconfig

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
)

// UserKeyName is the file name of envd's client key inside its config dir.
const UserKeyName = "id_ed25519"

// Key is envd's client key pair. Its public half is handed to each container
// at start, never baked into an image, so one image serves a whole team.
type Key struct {
	Path          string     // private key file, for IdentityFile
	AuthorizedKey string     // public key as one authorized_keys line, no newline
	Signer        ssh.Signer // for envd's own connections
}

// EnsureUserKey loads the key pair in dir, generating an ed25519 pair on first
// use. Two envd processes racing here end up with the same key.
func EnsureUserKey(dir string) (Key, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Key{}, err
	}
	path := filepath.Join(dir, UserKeyName)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		if err := createUserKey(path); err != nil {
			return Key{}, err
		}
	}
	return loadUserKey(path)
}

// createUserKey writes a new private key to path unless one appears there
// first. It links a complete temp file into place: unlike rename, link never
// replaces a key another process has already handed out.
func createUserKey(path string) error {
	pemBytes, _, err := newKey("envd")
	if err != nil {
		return err
	}
	tmp, err := writeTemp(filepath.Dir(path), filepath.Base(path), pemBytes, 0o600, nil)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	syncDir(filepath.Dir(path))
	return nil
}

func loadUserKey(path string) (Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Key{}, err
	}
	signer, err := ssh.ParsePrivateKey(data)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		return Key{}, fmt.Errorf("%s is protected by a passphrase; envd needs a key without one: move it away and envd will create a new one", path)
	}
	if err != nil {
		return Key{}, fmt.Errorf("%s is not a valid private key (%v); move it away and envd will create a new one", path, err)
	}
	// ssh refuses private keys that others can read.
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(path, 0o600); err != nil {
			return Key{}, err
		}
	}
	authorized := authorizedLine(signer.PublicKey(), "envd")
	// The .pub file is derived from the private key, so any process may
	// (re)write it: all write the same bytes.
	pubPath := path + ".pub"
	if old, err := os.ReadFile(pubPath); err != nil || !bytes.Equal(old, []byte(authorized+"\n")) {
		if err := replaceFile(pubPath, []byte(authorized+"\n"), 0o644, nil); err != nil {
			return Key{}, err
		}
	}
	return Key{Path: path, AuthorizedKey: authorized, Signer: signer}, nil
}

// NewHostKey generates a host key for one environment. envd keeps the public
// half (to pin in known_hosts) and gives the private PEM to the container's
// sshd, so the host key is known before the first connection and never shared
// between environments.
func NewHostKey() (privatePEM []byte, pub ssh.PublicKey, err error) {
	return newKey("envd host key")
}

// newKey returns a fresh ed25519 key as an OpenSSH private key PEM.
func newKey(comment string) ([]byte, ssh.PublicKey, error) {
	pubRaw, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return nil, nil, err
	}
	pub, err := ssh.NewPublicKey(pubRaw)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(block), pub, nil
}

// authorizedLine renders pub as "<type> <base64> <comment>".
func authorizedLine(pub ssh.PublicKey, comment string) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))) + " " + comment
}
