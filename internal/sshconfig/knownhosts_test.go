package sshconfig

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func newPub(t *testing.T) ssh.PublicKey {
	t.Helper()
	_, pub, err := NewHostKey()
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// accepts reports whether an ssh client using path would accept key for alias.
func accepts(t *testing.T, path, alias string, key ssh.PublicKey) bool {
	t.Helper()
	cb, err := knownhosts.New(path)
	if err != nil {
		t.Fatal(err)
	}
	return cb(alias+":22", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2222}, key) == nil
}

func TestKnownHosts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "envd", "known_hosts")
	k := KnownHosts{Path: path}
	a1, a2, b := newPub(t), newPub(t), newPub(t)
	const userLines = "# kept\nother.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKOqd9b5KvCJDp0MrnDoO1lJxvmAcXLplWhH0tjSC6lU"

	steps := []struct {
		name string
		do   func() error
		want string // file contents; A1, A2, B stand for pinned lines
	}{
		{"pin a", func() error { return k.Pin("a.envd", a1) }, "A1"},
		{"pin b", func() error { return k.Pin("b.envd", b) }, "A1B"},
		{"re-pin a replaces it", func() error { return k.Pin("a.envd", a2) }, "BA2"},
		{"same pin again is a no-op", func() error { return k.Pin("a.envd", a2) }, "BA2"},
		{"unpin b", func() error { return k.Unpin("b.envd") }, "A2"},
		{"unpin missing", func() error { return k.Unpin("nope.envd") }, "A2"},
		{"user lines survive", func() error {
			old, _ := os.ReadFile(path)
			os.WriteFile(path, append(old, userLines...), 0o600)
			return k.Pin("b.envd", b)
		}, "A2" + userLines + "\nB"},
		{"unpin a keeps user lines", func() error { return k.Unpin("a.envd") }, userLines + "\nB"},
	}
	line := map[string]string{
		"A1": knownhosts.Line([]string{"a.envd"}, a1) + "\n",
		"A2": knownhosts.Line([]string{"a.envd"}, a2) + "\n",
		"B":  knownhosts.Line([]string{"b.envd"}, b) + "\n",
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		want := strings.NewReplacer("A1", line["A1"], "A2", line["A2"], "B", line["B"]).Replace(s.want)
		if got := string(readFile(t, path)); got != want {
			t.Fatalf("%s: file\n%q\nwant\n%q", s.name, got, want)
		}
	}
	if !accepts(t, path, "b.envd", b) || accepts(t, path, "b.envd", a2) || accepts(t, path, "a.envd", a2) {
		t.Error("known_hosts does not pin exactly b.envd's key")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestKnownHostsEdgeCases(t *testing.T) {
	dir := t.TempDir()
	k := KnownHosts{Path: filepath.Join(dir, "known_hosts")}
	if err := k.Unpin("a.envd"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(k.Path); !os.IsNotExist(err) {
		t.Error("Unpin created the file")
	}
	for _, alias := range []string{"", "a b", "a,b", "@revoked", "#x", "*.envd", "[a]:22"} {
		if err := k.Pin(alias, newPub(t)); err == nil {
			t.Errorf("Pin(%q) accepted", alias)
		}
	}
}
