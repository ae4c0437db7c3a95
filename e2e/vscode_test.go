package e2e

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// vsxServer is an Open VSX-compatible marketplace with one generated
// extension, acme.rocket 1.2.3.
func vsxServer(t *testing.T) *httptest.Server {
	t.Helper()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/acme/rocket":
			json.NewEncoder(w).Encode(map[string]any{"version": "1.2.3", "files": map[string]string{"download": srv.URL + "/files/acme.rocket-1.2.3.vsix"}})
		case "/files/acme.rocket-1.2.3.vsix":
			writeVSIX(w, "acme", "rocket", "1.2.3")
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// writeVSIX writes a minimal extension package.
func writeVSIX(w io.Writer, publisher, name, version string) {
	zw := zip.NewWriter(w)
	for file, content := range map[string]string{
		"extension/package.json": fmt.Sprintf(`{"publisher": %q, "name": %q, "version": %q, "main": "./out/main.js"}`, publisher, name, version),
		"extension/out/main.js":  "exports.activate = () => {};",
		"extension.vsixmanifest": "<PackageManifest/>",
	} {
		f, _ := zw.Create(file)
		f.Write([]byte(content))
	}
	zw.Close()
}

// TestVSCodeExtensions: install.vscode_extensions puts the extension where
// VS Code's remote server looks, owned by the environment's user.
func TestVSCodeExtensions(t *testing.T) {
	requireE2E(t)
	srv := vsxServer(t)
	var local bytes.Buffer
	writeVSIX(&local, "me", "local", "0.1.0")
	dir := project(t, "e2e-vscode", map[string]string{
		"build.envd": `def build():
    base(os="debian12", language="python3")
    install.vscode_extensions(["acme.rocket", "tools/local.vsix"])
`,
		"tools/local.vsix": local.String(),
	})
	removeImage(t, "e2e-vscode:dev")
	build(t, dir, "--vscode-marketplace", srv.URL)
	out := runInImage(t, "e2e-vscode:dev", "sh", "-c", "stat -c '%u %n' /home/envd/.vscode-server/extensions/*/package.json && cat /root/.vscode-server/extensions/acme.rocket-1.2.3/out/main.js")
	want := "1000 /home/envd/.vscode-server/extensions/acme.rocket-1.2.3/package.json\n" +
		"1000 /home/envd/.vscode-server/extensions/me.local-0.1.0/package.json\nexports.activate = () => {};"
	if strings.TrimSpace(out) != want {
		t.Errorf("installed extension: got %q, want %q", out, want)
	}
}
