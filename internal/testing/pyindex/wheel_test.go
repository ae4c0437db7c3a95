package pyindex

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNormalizeName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"requests", "requests"},
		{"Django", "django"},
		{"zope.interface", "zope-interface"},
		{"Foo__Bar-.-baz", "foo-bar-baz"},
		{"ruamel.yaml.clib", "ruamel-yaml-clib"},
	} {
		if got := NormalizeName(tc.in); got != tc.want {
			t.Errorf("NormalizeName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// readZip returns the wheel's files by path.
func readZip(t *testing.T, path string) map[string][]byte {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	files := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		files[f.Name] = data
	}
	return files
}

func TestMakeWheel(t *testing.T) {
	for _, tc := range []struct {
		name, version string
		opts          WheelOptions
		wantFile      string
		wantPkg       string
		wantMetadata  []string // lines METADATA must contain
		wantErr       string
	}{
		{
			name: "alpha", version: "1.0",
			wantFile: "alpha-1.0-py3-none-any.whl", wantPkg: "alpha",
			wantMetadata: []string{"Metadata-Version: 2.1", "Name: alpha", "Version: 1.0"},
		},
		{
			name: "My.Cool-Pkg", version: "2.3.post1",
			opts:     WheelOptions{Requires: []string{"alpha", "beta>=1.0"}, PadBytes: 100_000},
			wantFile: "my_cool_pkg-2.3.post1-py3-none-any.whl", wantPkg: "my_cool_pkg",
			wantMetadata: []string{"Name: My.Cool-Pkg", "Version: 2.3.post1", "Requires-Dist: alpha", "Requires-Dist: beta>=1.0"},
		},
		{name: "-bad", version: "1.0", wantErr: "invalid distribution name"},
		{name: "good", version: "1.0-1", wantErr: "invalid version"},
		{name: "good", version: "1.0", opts: WheelOptions{PadBytes: -1}, wantErr: "negative PadBytes"},
	} {
		t.Run(tc.name+"-"+tc.version, func(t *testing.T) {
			dir := t.TempDir()
			path, err := MakeWheel(dir, tc.name, tc.version, tc.opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := filepath.Join(dir, tc.wantFile); path != want {
				t.Errorf("path = %s, want %s", path, want)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Errorf("dir holds %d files, want only the wheel (no temporary left)", len(entries))
			}

			files := readZip(t, path)
			init := string(files[tc.wantPkg+"/__init__.py"])
			if want := fmt.Sprintf("__version__ = %q\n", tc.version); init != want {
				t.Errorf("__init__.py = %q, want %q", init, want)
			}
			distInfo := strings.TrimSuffix(tc.wantFile, "-py3-none-any.whl") + ".dist-info/"
			metadata := string(files[distInfo+"METADATA"])
			for _, line := range tc.wantMetadata {
				if !strings.Contains(metadata, line+"\n") {
					t.Errorf("METADATA lacks %q:\n%s", line, metadata)
				}
			}
			if w := string(files[distInfo+"WHEEL"]); !strings.Contains(w, "Root-Is-Purelib: true\n") || !strings.Contains(w, "Tag: py3-none-any\n") {
				t.Errorf("WHEEL = %q", w)
			}
			checkRecord(t, files, distInfo+"RECORD")

			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Size() < int64(tc.opts.PadBytes) {
				t.Errorf("wheel is %d bytes, want at least PadBytes=%d", fi.Size(), tc.opts.PadBytes)
			}
		})
	}
}

// checkRecord verifies that RECORD lists every other file with its right hash and size, and itself without.
func checkRecord(t *testing.T, files map[string][]byte, recordPath string) {
	t.Helper()
	listed := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(files[recordPath])), "\n") {
		parts := strings.Split(line, ",")
		if len(parts) != 3 {
			t.Fatalf("RECORD line %q has %d fields", line, len(parts))
		}
		path := parts[0]
		listed[path] = true
		if path == recordPath {
			if parts[1] != "" || parts[2] != "" {
				t.Errorf("RECORD's own line = %q, want no hash or size", line)
			}
			continue
		}
		data, ok := files[path]
		if !ok {
			t.Errorf("RECORD lists %s, which is not in the wheel", path)
			continue
		}
		sum := sha256.Sum256(data)
		if want := "sha256=" + base64.RawURLEncoding.EncodeToString(sum[:]); parts[1] != want {
			t.Errorf("RECORD hash of %s = %s, want %s", path, parts[1], want)
		}
		if want := fmt.Sprint(len(data)); parts[2] != want {
			t.Errorf("RECORD size of %s = %s, want %s", path, parts[2], want)
		}
	}
	for path := range files {
		if !listed[path] {
			t.Errorf("%s is in the wheel but not in RECORD", path)
		}
	}
}

func TestMakeWheelIsReproducibleAndIncompressible(t *testing.T) {
	const pad = 1 << 20
	var wheels [][]byte
	for range 2 {
		path, err := MakeWheel(t.TempDir(), "big", "1.0", WheelOptions{PadBytes: pad})
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		wheels = append(wheels, data)
	}
	if !bytes.Equal(wheels[0], wheels[1]) {
		t.Error("two wheels made from the same arguments differ")
	}
	if len(wheels[0]) < pad {
		t.Errorf("wheel is %d bytes, want at least %d: the padding must not compress", len(wheels[0]), pad)
	}

	// Different versions get different padding, so layers of different wheels never deduplicate by accident.
	dir := t.TempDir()
	first, err := MakeWheel(dir, "big", "1.0", WheelOptions{PadBytes: pad})
	if err != nil {
		t.Fatal(err)
	}
	second, err := MakeWheel(dir, "big", "1.1", WheelOptions{PadBytes: pad})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(readZip(t, first)["big/_pad.bin"], readZip(t, second)["big/_pad.bin"]) {
		t.Error("big 1.0 and 1.1 have the same padding")
	}
}
