package pyindex

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestMetadataIsServedAndNotCounted: like PyPI, the index offers each
// wheel's METADATA (PEP 658), and fetching it is not a download.
func TestMetadataIsServedAndNotCounted(t *testing.T) {
	dir := t.TempDir()
	if _, err := MakeWheel(dir, "alpha", "1.0", WheelOptions{Requires: []string{"beta"}}); err != nil {
		t.Fatal(err)
	}
	srv, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	get := func(path string) string {
		resp, err := http.Get("http://" + srv.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if page := get("/simple/alpha/"); !strings.Contains(page, `data-dist-info-metadata="sha256=`) {
		t.Errorf("project page offers no metadata:\n%s", page)
	}
	if meta := get("/files/alpha-1.0-py3-none-any.whl.metadata"); !strings.Contains(meta, "Name: alpha") || !strings.Contains(meta, "Requires-Dist: beta") {
		t.Errorf("metadata = %q", meta)
	}
	if n := srv.TotalDownloads(); n != 0 {
		t.Errorf("fetching metadata counted %d downloads", n)
	}
}
