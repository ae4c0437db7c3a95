//go:build unix

package agent

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/pkg/sftp"
)

func TestSFTP(t *testing.T) {
	ts := newTestServer(t)
	client, err := sftp.NewClient(ts.mustDial(t))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	// Relative paths start in the workdir, like a shell session.
	f, err := client.Create("notes.txt")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("written over sftp\n")); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(ts.cfg.Workdir, "notes.txt"))
	if err != nil || string(got) != "written over sftp\n" {
		t.Fatalf("file on disk = %q, %v", got, err)
	}

	r, err := client.Open(filepath.Join(ts.cfg.Workdir, "notes.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	back, err := io.ReadAll(r)
	if err != nil || string(back) != string(got) {
		t.Fatalf("read back %q, %v", back, err)
	}
}
