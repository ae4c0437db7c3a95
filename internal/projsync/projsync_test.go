package projsync

import (
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pkg/sftp"
)

// client is an sftp client talking to pkg/sftp's server (the one the agent
// serves) over a pipe.
func client(t *testing.T) *sftp.Client {
	t.Helper()
	cr, sw := io.Pipe()
	sr, cw := io.Pipe()
	srv, err := sftp.NewServer(struct {
		io.Reader
		io.WriteCloser
	}{sr, sw})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { srv.Serve(); close(done) }()
	c, err := sftp.NewClientPipe(cr, cw)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cw.Close() // the server reads EOF and returns
		<-done
		sw.Close() // the client's reader ends
		c.Close()
	})
	return c
}

func write(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPushAndPull(t *testing.T) {
	c := client(t)
	local, remote := t.TempDir(), filepath.Join(t.TempDir(), "env", "project")
	write(t, filepath.Join(local, "train.py"), "print(1)\n", 0o644)
	write(t, filepath.Join(local, "run.sh"), "#!/bin/sh\n", 0o755)
	write(t, filepath.Join(local, "src/model/net.py"), "net\n", 0o644)
	write(t, filepath.Join(local, ".git/HEAD"), "ref: refs/heads/main\n", 0o644)
	write(t, filepath.Join(local, "data/big.bin"), "0123456789", 0o644)
	write(t, filepath.Join(local, "notes.log"), "log\n", 0o644)
	write(t, filepath.Join(local, "keep.log"), "kept\n", 0o644)
	write(t, filepath.Join(local, IgnoreFile), "# large or local\ndata/\n*.log\n!keep.log\n", 0o644)
	if err := os.Symlink("src/model", filepath.Join(local, "model")); err != nil {
		t.Fatal(err)
	}
	ign, err := LoadIgnore(local)
	if err != nil {
		t.Fatal(err)
	}

	st, err := Push(c, local, remote, ign)
	if err != nil {
		t.Fatal(err)
	}
	if st.Files != 6 {
		t.Errorf("first push: %v, want 6 files (train.py run.sh net.py HEAD keep.log .envdignore)", st)
	}
	for _, p := range []string{"train.py", "src/model/net.py", ".git/HEAD", "keep.log"} {
		if read(t, filepath.Join(remote, p)) != read(t, filepath.Join(local, p)) {
			t.Errorf("%s differs after push", p)
		}
	}
	for _, p := range []string{"data", "notes.log"} {
		if _, err := os.Lstat(filepath.Join(remote, p)); err == nil {
			t.Errorf("%s was pushed though .envdignore names it", p)
		}
	}
	if fi, err := os.Stat(filepath.Join(remote, "run.sh")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("run.sh mode after push: %v, %v; want 0755", fi, err)
	}
	if target, err := os.Readlink(filepath.Join(remote, "model")); err != nil || target != "src/model" {
		t.Errorf("symlink after push: %q, %v", target, err)
	}

	// Nothing changed: nothing copied. One file changed: one copied.
	if st, err := Push(c, local, remote, ign); err != nil || st.Files != 0 || st.Unchanged != 7 {
		t.Errorf("second push: %v, %v; want 0 copied, 7 unchanged", st, err)
	}
	write(t, filepath.Join(local, "train.py"), "print(2)\n", 0o644)
	later := time.Now().Add(2 * time.Second)
	os.Chtimes(filepath.Join(local, "train.py"), later, later)
	if st, err := Push(c, local, remote, ign); err != nil || st.Files != 1 {
		t.Errorf("push after an edit: %v, %v; want 1 copied", st, err)
	}

	// Work done in the environment comes back; the host's own files stay.
	write(t, filepath.Join(remote, "results/metrics.json"), `{"acc": 0.9}`, 0o644)
	write(t, filepath.Join(remote, "train.py"), "print(3)\n", 0o644)
	write(t, filepath.Join(remote, "debug.log"), "ignored\n", 0o644)
	os.Chtimes(filepath.Join(remote, "train.py"), later.Add(time.Hour), later.Add(time.Hour))
	st, err = Pull(c, remote, local, ign)
	if err != nil {
		t.Fatal(err)
	}
	if st.Files != 2 {
		t.Errorf("pull: %v, want 2 files (metrics.json, train.py)", st)
	}
	if got := read(t, filepath.Join(local, "results/metrics.json")); got != `{"acc": 0.9}` {
		t.Errorf("metrics.json after pull = %q", got)
	}
	if got := read(t, filepath.Join(local, "train.py")); got != "print(3)\n" {
		t.Errorf("train.py after pull = %q", got)
	}
	if _, err := os.Stat(filepath.Join(local, "debug.log")); err == nil {
		t.Error("debug.log was pulled though .envdignore names it")
	}
	if got := read(t, filepath.Join(local, "data/big.bin")); got != "0123456789" {
		t.Errorf("an ignored host file changed: %q", got)
	}
}

func TestIgnoreMatch(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, IgnoreFile), "checkpoints/\n*.pt\n/build\n!best.pt\n", 0o644)
	ign, err := LoadIgnore(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path  string
		isDir bool
		want  bool
	}{
		{"checkpoints", true, true},
		{"a/checkpoints", true, true},
		{"model.pt", false, true},
		{"best.pt", false, false},
		{"build", true, true},
		{"src/build", true, false},
		{"train.py", false, false},
	} {
		if got := ign.Match(tc.path, tc.isDir); got != tc.want {
			t.Errorf("Match(%q) = %v, want %v", tc.path, got, tc.want)
		}
	}
	none, err := LoadIgnore(t.TempDir())
	if err != nil || none.Match("anything", false) {
		t.Errorf("without .envdignore: %v, %v", none.Match("anything", false), err)
	}
}
