package uvbinary

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestIsStaticWheel(t *testing.T) {
	for _, tc := range []struct {
		name string
		want bool
	}{
		{"uv-0.13.9-py3-none-musllinux_1_1_x86_64.whl", true},
		{"uv-0.13.9-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", false},
		{"uv-0.13.9-py3-none-musllinux_1_1_aarch64.whl", false},
		{"uv-0.13.9-py3-none-manylinux_2_17_x86_64.musllinux_1_1_x86_64.whl", true},
		{"uv-0.13.9.tar.gz", false},
	} {
		if got := isStaticWheel(tc.name, "x86_64"); got != tc.want {
			t.Errorf("isStaticWheel(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// fakeWheel is a zip with a uv "binary" where uv's wheels have it.
func fakeWheel(t *testing.T, version, content string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create("uv-" + version + ".data/scripts/uv")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(w, content)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// index serves a simple page for uv linking the given files, and the files;
// it counts downloads of files.
type index struct {
	files     map[string][]byte
	sums      map[string]string // overrides the sha256 in the page
	downloads atomic.Int32
}

func (ix *index) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/simple/uv/":
		for name, data := range ix.files {
			sum := sha256.Sum256(data)
			hexSum := hex.EncodeToString(sum[:])
			if s, ok := ix.sums[name]; ok {
				hexSum = s
			}
			fmt.Fprintf(w, "<a href=\"../../files/%s#sha256=%s\" data-requires-python=\"&gt;=3.8\">%s</a><br>\n", name, hexSum, name)
		}
	case strings.HasPrefix(r.URL.Path, "/files/"):
		data, ok := ix.files[strings.TrimPrefix(r.URL.Path, "/files/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		ix.downloads.Add(1)
		w.Write(data)
	default:
		http.NotFound(w, r)
	}
}

func TestEnsureFetchesOnceAndChecksTheHash(t *testing.T) {
	static := "uv-0.13.9-py3-none-musllinux_1_1_x86_64.whl"
	ix := &index{files: map[string][]byte{
		static: fakeWheel(t, "0.13.9", "static uv"),
		"uv-0.13.9-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl": fakeWheel(t, "0.13.9", "glibc uv"),
		"uv-0.13.8-py3-none-musllinux_1_1_x86_64.whl":                       fakeWheel(t, "0.13.8", "older uv"),
	}}
	srv := httptest.NewServer(ix)
	defer srv.Close()
	cache := t.TempDir()
	ctx := context.Background()
	// an empty directory where uv goes (docker run -v makes one) is no obstacle
	if err := os.MkdirAll(filepath.Join(cache, Subdir("0.13.9", "amd64")), 0o755); err != nil {
		t.Fatal(err)
	}

	for range 2 {
		dir, err := Ensure(ctx, srv.Client(), cache, "0.13.9", "amd64", []string{srv.URL + "/missing/", srv.URL + "/simple"})
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dir, BinaryPath))
		if err != nil || string(got) != "static uv" {
			t.Fatalf("uv binary = %q, %v; want the static wheel's", got, err)
		}
		if fi, _ := os.Stat(filepath.Join(dir, BinaryPath)); fi.Mode().Perm()&0o111 == 0 {
			t.Errorf("uv is not executable: %v", fi.Mode())
		}
	}
	if n := ix.downloads.Load(); n != 1 {
		t.Errorf("downloaded %d wheels, want 1 (the second call uses the cache)", n)
	}
}

func TestEnsureFailsCleanly(t *testing.T) {
	static := "uv-0.13.9-py3-none-musllinux_1_1_x86_64.whl"
	for _, tc := range []struct {
		name  string
		index *index
		arch  string
		want  string
	}{
		{"wrong hash", &index{files: map[string][]byte{static: fakeWheel(t, "0.13.9", "x")},
			sums: map[string]string{static: strings.Repeat("0", 64)}}, "amd64", "the index says 0000"},
		{"glibc wheel only", &index{files: map[string][]byte{
			"uv-0.13.9-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl": fakeWheel(t, "0.13.9", "x")}}, "amd64",
			"no static wheel of uv 0.13.9 for x86_64"},
		{"no binary in the wheel", &index{files: map[string][]byte{static: fakeWheel(t, "0.13.8", "x")}}, "amd64",
			"the wheel has no uv-0.13.9.data/scripts/uv"},
		{"no build for the platform", &index{}, "s390x", "no static build for linux/s390x"},
		{"not an index", nil, "amd64", "404 Not Found"},
		{"no uv on the index", &index{}, "amd64", "no static wheel of uv 0.13.9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h http.Handler = http.NotFoundHandler()
			if tc.index != nil {
				h = tc.index
			}
			srv := httptest.NewServer(h)
			defer srv.Close()
			cache := t.TempDir()
			_, err := Ensure(context.Background(), srv.Client(), cache, "0.13.9", tc.arch, []string{srv.URL + "/simple/"})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to say %q", err, tc.want)
			}
			// nothing half-written: the cache holds no binary, nor temporary files
			left, _ := filepath.Glob(filepath.Join(cache, "*"))
			if len(left) > 0 {
				t.Errorf("left behind: %v", left)
			}
		})
	}
}

func TestEnsureRemovesWhatAKilledFetchLeft(t *testing.T) {
	cache := t.TempDir()
	stale, fresh := filepath.Join(cache, ".uv-1"), filepath.Join(cache, ".uv-2")
	for _, d := range []string{stale, fresh} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * time.Hour)
	os.Chtimes(stale, old, old)
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	Ensure(context.Background(), srv.Client(), cache, "0.13.9", "amd64", []string{srv.URL})
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("a fetch's leftovers from two hours ago are still there: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("a fetch that may be under way lost its directory: %v", err)
	}
}
