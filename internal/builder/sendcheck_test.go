package builder

import (
	"context"
	"errors"
	"io"
	gofs "io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCheckedFS(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, path string) // between walk and send
		want   string                          // in the error; "" for none
	}{
		{"unchanged", func(*testing.T, string) {}, ""},
		{"removed", func(t *testing.T, p string) { must(t, os.Remove(p)) }, "a.bin was removed while envd was sending it"},
		{"truncated", func(t *testing.T, p string) { must(t, os.Truncate(p, 0)) }, "a.bin changed size"},
		{"rewritten same size", func(t *testing.T, p string) {
			must(t, os.WriteFile(p, []byte("HELLO"), 0o644))
			future := time.Now().Add(time.Hour)
			must(t, os.Chtimes(p, future, future))
		}, "a.bin was modified"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "a.bin")
			must(t, os.WriteFile(p, []byte("hello"), 0o644))
			fs, err := newCheckedFS(dir)
			must(t, err)
			must(t, fs.Walk(context.Background(), "/", func(string, gofs.DirEntry, error) error { return nil }))
			tc.change(t, p)
			rc, err := fs.Open("a.bin")
			if err == nil {
				_, err = io.ReadAll(rc)
				rc.Close()
			}
			got := fs.Err()
			if tc.want == "" {
				if err != nil || got != nil {
					t.Fatalf("unchanged file: open/read %v, recorded %v", err, got)
				}
				return
			}
			var ce *ChangedFileError
			if !errors.As(got, &ce) || !strings.Contains(got.Error(), tc.want) {
				t.Fatalf("recorded %v, want an error containing %q", got, tc.want)
			}
			if err == nil {
				t.Fatal("the send itself did not fail")
			}
		})
	}
}

// A file that grows while it is read fails even though it matched at open.
func TestCheckedFSGrowsDuringSend(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.bin")
	must(t, os.WriteFile(p, []byte("hello"), 0o644))
	fs, err := newCheckedFS(dir)
	must(t, err)
	must(t, fs.Walk(context.Background(), "/", func(string, gofs.DirEntry, error) error { return nil }))
	rc, err := fs.Open("a.bin")
	must(t, err)
	defer rc.Close()
	f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	must(t, err)
	f.WriteString(" world")
	f.Close()
	if _, err := io.ReadAll(rc); err == nil || fs.Err() == nil || !strings.Contains(fs.Err().Error(), "grew") {
		t.Fatalf("read err %v, recorded %v; want 'grew'", err, fs.Err())
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
