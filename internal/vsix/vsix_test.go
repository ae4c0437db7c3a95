package vsix

import (
	"archive/zip"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// makeVSIX writes a minimal extension package; extra entries may be hostile.
func makeVSIX(t *testing.T, path, publisher, name, version string, extra map[string]string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	manifest, _ := json.Marshal(map[string]string{"publisher": publisher, "name": name, "version": version})
	files := map[string]string{"extension/package.json": string(manifest), "extension/out/main.js": "exports.activate = () => {}", "[Content_Types].xml": "<Types/>"}
	for k, v := range extra {
		files[k] = v
	}
	for n, c := range files {
		w, _ := zw.Create(n)
		w.Write([]byte(c))
	}
	zw.Close()
	f.Close()
}

func TestParseRef(t *testing.T) {
	for in, want := range map[string]Ref{
		"ms-python.python":        {"ms-python", "python", ""},
		"ms-python.python@2024.2": {"ms-python", "python", "2024.2"},
	} {
		if got, err := ParseRef(in); err != nil || got != want {
			t.Errorf("ParseRef(%q) = %+v, %v", in, got, err)
		}
	}
	if _, err := ParseRef("python"); err == nil {
		t.Error("an id without publisher was accepted")
	}
}

func TestDownloadAndInstall(t *testing.T) {
	dir := t.TempDir()
	makeVSIX(t, filepath.Join(dir, "ext.vsix"), "Acme", "rocket", "1.2.3", nil)
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/Acme/rocket":
			json.NewEncoder(w).Encode(map[string]any{"version": "1.2.3", "files": map[string]string{"download": srv.URL + "/ext.vsix"}})
		case "/ext.vsix":
			http.ServeFile(w, r, filepath.Join(dir, "ext.vsix"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	p, err := Download(context.Background(), srv.URL, Ref{Publisher: "Acme", Name: "rocket"}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	exts := t.TempDir()
	dest, err := Install(p, exts)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(dest) != "acme.rocket-1.2.3" {
		t.Errorf("installed into %s", dest)
	}
	if _, err := os.Stat(filepath.Join(dest, "out", "main.js")); err != nil {
		t.Errorf("extension files missing: %v", err)
	}
	if _, err := Download(context.Background(), srv.URL, Ref{Publisher: "acme", Name: "missing"}, t.TempDir()); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("missing extension: %v", err)
	}
}

func TestInstallRefusesEscapes(t *testing.T) {
	p := filepath.Join(t.TempDir(), "evil.vsix")
	makeVSIX(t, p, "a", "b", "1", map[string]string{"extension/../../escaped.txt": "x"})
	if _, err := Install(p, t.TempDir()); err == nil || !strings.Contains(err.Error(), "escapes") {
		t.Errorf("zip slip not refused: %v", err)
	}
}
