package elfbin

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "script")
	os.WriteFile(text, []byte("#!/bin/sh\necho hi\n"), 0o755)
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	tests := []struct {
		name    string
		path    string
		wantErr error
		static  bool
	}{
		// Go links statically what needs no cgo package (net, os/user), as here.
		{"this test binary", os.Args[0], nil, true},
		{"the system's sh (dynamic)", sh, nil, false},
		{"a script", text, ErrNotELF, false},
		{"missing", filepath.Join(dir, "none"), fs.ErrNotExist, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := Read(tt.path)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if runtime.GOOS == "linux" && info.Arch != runtime.GOARCH {
				t.Errorf("arch %q, want %q", info.Arch, runtime.GOARCH)
			}
			if info.Static() != tt.static || (tt.static != (len(info.Needed) == 0)) {
				t.Errorf("static %v (interp %q, needed %v), want static %v", info.Static(), info.Interp, info.Needed, tt.static)
			}
		})
	}
}
