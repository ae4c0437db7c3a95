package sshconfig

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
)

// sshKeygen runs ssh-keygen with args; skips the test when it is missing.
func sshKeygen(t *testing.T, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Skip("ssh-keygen not installed")
	}
	out, err := exec.Command("ssh-keygen", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func TestEnsureUserKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "envd")
	k1, err := EnsureUserKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := EnsureUserKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if k1.AuthorizedKey != k2.AuthorizedKey || !bytes.Equal(k1.Signer.PublicKey().Marshal(), k2.Signer.PublicKey().Marshal()) {
		t.Fatal("second call returned a different key")
	}
	if k1.Path != filepath.Join(dir, "id_ed25519") || !strings.HasPrefix(k1.AuthorizedKey, "ssh-ed25519 ") || strings.Contains(k1.AuthorizedKey, "\n") {
		t.Errorf("key = %+v", k1)
	}
	for path, mode := range map[string]os.FileMode{dir: 0o700, k1.Path: 0o600, k1.Path + ".pub": 0o644} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, %v; want %v", path, fi.Mode().Perm(), err, mode)
		}
	}
	if pub := readFile(t, k1.Path+".pub"); string(pub) != k1.AuthorizedKey+"\n" {
		t.Errorf(".pub = %q, want %q", pub, k1.AuthorizedKey)
	}

	// OpenSSH reads both files and agrees they are one pair.
	fpPriv := strings.Fields(sshKeygen(t, "-l", "-f", k1.Path))[1]
	fpPub := strings.Fields(sshKeygen(t, "-l", "-f", k1.Path+".pub"))[1]
	if fpPriv != fpPub || fpPriv != ssh.FingerprintSHA256(k1.Signer.PublicKey()) {
		t.Errorf("fingerprints differ: private %s, public %s", fpPriv, fpPub)
	}
	if derived := sshKeygen(t, "-y", "-f", k1.Path); !strings.HasPrefix(k1.AuthorizedKey, strings.TrimSpace(derived)) {
		t.Errorf("ssh-keygen -y = %q, want the start of %q", derived, k1.AuthorizedKey)
	}
}

func TestEnsureUserKeyRepairs(t *testing.T) {
	dir := t.TempDir()
	k, err := EnsureUserKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	// A lost .pub is rewritten; a private key others can read is tightened.
	os.Remove(k.Path + ".pub")
	os.Chmod(k.Path, 0o644)
	k2, err := EnsureUserKey(dir)
	if err != nil || k2.AuthorizedKey != k.AuthorizedKey {
		t.Fatalf("reload: %v", err)
	}
	if string(readFile(t, k.Path+".pub")) != k.AuthorizedKey+"\n" {
		t.Error(".pub not restored")
	}
	if fi, _ := os.Stat(k.Path); fi.Mode().Perm() != 0o600 {
		t.Errorf("private key mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestEnsureUserKeyBadFile(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		{"garbage", "not a key\n", "not a valid private key"},
		{"empty", "", "not a valid private key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "id_ed25519")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := EnsureUserKey(dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("got %v, want an error naming %s", err, path)
			}
			if got := string(readFile(t, path)); got != tt.content {
				t.Error("the user's file was overwritten")
			}
		})
	}
}

// TestEnsureUserKeyRace starts many goroutines and processes on an empty dir:
// all must come back with the same key and leave no temp files.
func TestEnsureUserKeyRace(t *testing.T) {
	dir := t.TempDir()
	const n = 16
	keys := make(chan string, 2*n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			k, err := EnsureUserKey(dir)
			if err != nil {
				t.Error(err)
			}
			keys <- k.AuthorizedKey
		})
		wg.Go(func() {
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
			cmd.Env = append(os.Environ(), "ENVD_SSHCONFIG_HELPER=key", "ENVD_KEYDIR="+dir)
			out, err := cmd.Output()
			if err != nil {
				t.Errorf("helper: %v\n%s", err, out)
			}
			first, _, _ := strings.Cut(string(out), "\n")
			keys <- first
		})
	}
	wg.Wait()
	close(keys)
	want, err := EnsureUserKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	for k := range keys {
		if k != want.AuthorizedKey {
			t.Errorf("got key %q, want %q", k, want.AuthorizedKey)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("dir holds %v, want just the key pair", names)
	}
}

func TestNewHostKey(t *testing.T) {
	privPEM, pub, err := NewHostKey()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(privPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(signer.PublicKey().Marshal(), pub.Marshal()) || pub.Type() != ssh.KeyAlgoED25519 {
		t.Error("public key does not match the private key")
	}
	_, pub2, _ := NewHostKey()
	if bytes.Equal(pub.Marshal(), pub2.Marshal()) {
		t.Error("two environments got the same host key")
	}
	// sshd in the container reads the same PEM.
	path := filepath.Join(t.TempDir(), "ssh_host_ed25519_key")
	if err := os.WriteFile(path, privPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if fp := strings.Fields(sshKeygen(t, "-l", "-f", path))[1]; fp != ssh.FingerprintSHA256(pub) {
		t.Errorf("ssh-keygen fingerprint %s, want %s", fp, ssh.FingerprintSHA256(pub))
	}
}
