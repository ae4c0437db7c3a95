package e2e

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// cranServer is a CRAN-like repository with one pure-R source package,
// hello 0.1, counting tarball downloads.
func cranServer(t *testing.T) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	root := t.TempDir()
	contrib := filepath.Join(root, "src", "contrib")
	os.MkdirAll(contrib, 0o755)
	os.WriteFile(filepath.Join(contrib, "PACKAGES"), []byte("Package: hello\nVersion: 0.1\nNeedsCompilation: no\n\n"), 0o644)
	f, err := os.Create(filepath.Join(contrib, "hello_0.1.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	for name, content := range map[string]string{
		"hello/DESCRIPTION": "Package: hello\nVersion: 0.1\nTitle: Say Hi\nDescription: Says hi.\nAuthor: envd\nMaintainer: envd <envd@example.com>\nLicense: MIT\n",
		"hello/NAMESPACE":   "export(hello)\n",
		"hello/R/hello.R":   "hello <- function() \"hi from a local CRAN\"\n",
	} {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content))})
		tw.Write([]byte(content))
	}
	tw.Close()
	gz.Close()
	f.Close()
	var tarballs atomic.Int32
	files := http.FileServer(http.Dir(root))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, ".tar.gz") {
			tarballs.Add(1)
		}
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &tarballs
}

// TestRPackagesFromALocalCRAN: install.r_packages installs from the mirror
// config.cran_mirror names; a rebuild downloads no tarball again.
func TestRPackagesFromALocalCRAN(t *testing.T) {
	requireE2E(t)
	srv, tarballs := cranServer(t)
	file := func(extra string) string {
		return fmt.Sprintf(`def build():
    base(image="debian:bookworm")
    install.r_lang()
    config.cran_mirror(url=%q)
    install.r_packages(name=["hello"])
%s`, srv.URL, extra)
	}
	dir := project(t, "e2e-r", map[string]string{"build.envd": file("")})
	removeImage(t, "e2e-r:dev")
	build(t, dir)
	if out := runInImage(t, "e2e-r:dev", "Rscript", "-e", "cat(hello::hello())"); strings.TrimSpace(out) != "hi from a local CRAN" {
		t.Errorf("R package in the image: %q", out)
	}
	if n := tarballs.Load(); n != 1 {
		t.Errorf("first build downloaded %d tarballs, want 1", n)
	}
	// A system package changes underneath: the R package step runs again,
	// from the tarballs kept in its cache mount.
	os.WriteFile(filepath.Join(dir, "build.envd"), []byte(file(`    install.apt_packages(name=["file"])`)), 0o644)
	tarballs.Store(0)
	m := build(t, dir)
	reran := false
	for _, step := range m.Ran {
		reran = reran || strings.HasPrefix(step, "R packages: hello")
	}
	if !reran {
		t.Errorf("the R package step did not run again: %q", m.Ran)
	}
	if n := tarballs.Load(); n != 0 {
		t.Errorf("rebuild downloaded %d tarballs, want 0", n)
	}
}
