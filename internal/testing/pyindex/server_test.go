package pyindex

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// startServer serves dir for the duration of the test.
func startServer(t *testing.T, dir string, opts ...Option) *Server {
	t.Helper()
	s, err := New(dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func makeWheel(t *testing.T, dir, name, version string, opts WheelOptions) string {
	t.Helper()
	path, err := MakeWheel(dir, name, version, opts)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// get fetches url without following redirects and returns status, body and Location.
func get(t *testing.T, url string) (int, string, string) {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body), resp.Header.Get("Location")
}

func TestServerRoutes(t *testing.T) {
	dir := t.TempDir()
	alpha := makeWheel(t, dir, "alpha", "1.0", WheelOptions{PadBytes: 5000})
	makeWheel(t, dir, "alpha", "2.0", WheelOptions{})
	makeWheel(t, dir, "Zope.Interface", "6.0", WheelOptions{})
	// Not wheels, or not finished: never listed or served.
	for _, f := range []string{"notes.txt", ".pyindex-123.tmp", ".hidden-1.0-py3-none-any.whl"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := startServer(t, dir)
	base := strings.TrimSuffix(s.URL(), "/simple/")

	alphaData, err := os.ReadFile(alpha)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(alphaData)
	alphaLink := `href="/files/alpha-1.0-py3-none-any.whl#sha256=` + hex.EncodeToString(sum[:]) + `"`

	for _, tc := range []struct {
		path         string
		wantStatus   int
		wantContains []string
		wantMissing  []string
		wantLocation string
		wantBody     []byte
	}{
		{path: "/simple/", wantStatus: 200,
			wantContains: []string{`href="/simple/alpha/"`, `href="/simple/zope-interface/"`},
			wantMissing:  []string{"notes", "hidden", "tmp"}},
		{path: "/simple/alpha/", wantStatus: 200,
			wantContains: []string{alphaLink, `href="/files/alpha-2.0-py3-none-any.whl#sha256=`},
			wantMissing:  []string{"zope"}},
		{path: "/simple/zope-interface/", wantStatus: 200, wantContains: []string{"zope_interface-6.0-py3-none-any.whl"}},
		{path: "/simple/Zope.Interface/", wantStatus: 301, wantLocation: "/simple/zope-interface/"},
		{path: "/simple/alpha", wantStatus: 301, wantLocation: "/simple/alpha/"},
		{path: "/simple/nosuch/", wantStatus: 404},
		{path: "/files/alpha-1.0-py3-none-any.whl", wantStatus: 200, wantBody: alphaData},
		{path: "/files/nosuch-1.0-py3-none-any.whl", wantStatus: 404},
		{path: "/files/notes.txt", wantStatus: 404},
		{path: "/files/.hidden-1.0-py3-none-any.whl", wantStatus: 404},
		{path: "/files/..%2Fescape.whl", wantStatus: 404},
	} {
		t.Run(tc.path, func(t *testing.T) {
			status, body, location := get(t, base+tc.path)
			if status != tc.wantStatus {
				t.Fatalf("status = %d, want %d; body:\n%s", status, tc.wantStatus, body)
			}
			for _, s := range tc.wantContains {
				if !strings.Contains(body, s) {
					t.Errorf("body lacks %s:\n%s", s, body)
				}
			}
			for _, s := range tc.wantMissing {
				if strings.Contains(body, s) {
					t.Errorf("body mentions %s:\n%s", s, body)
				}
			}
			if location != tc.wantLocation {
				t.Errorf("Location = %q, want %q", location, tc.wantLocation)
			}
			if tc.wantBody != nil && body != string(tc.wantBody) {
				t.Errorf("served %d bytes that differ from the %d-byte file", len(body), len(tc.wantBody))
			}
		})
	}

	// Only the one successful wheel download is counted; index pages and 404s are not.
	if got, want := s.DownloadCounts(), map[string]int{"alpha-1.0-py3-none-any.whl": 1}; !maps.Equal(got, want) {
		t.Errorf("downloads = %v, want %v", got, want)
	}
	if got := s.BytesServed(); got != int64(len(alphaData)) {
		t.Errorf("BytesServed = %d, want %d", got, len(alphaData))
	}
}

func TestServerSeesWheelsAddedLater(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	if status, _, _ := get(t, s.URL()+"late/"); status != 404 {
		t.Fatalf("status before the wheel exists = %d, want 404", status)
	}
	makeWheel(t, dir, "late", "1.0", WheelOptions{})
	if status, body, _ := get(t, s.URL()+"late/"); status != 200 || !strings.Contains(body, "late-1.0-py3-none-any.whl") {
		t.Fatalf("after adding the wheel: status %d, body:\n%s", status, body)
	}
}

// Rewriting a wheel under the same name must change the advertised hash, or pip would reject the download.
func TestServerRehashesChangedWheel(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	makeWheel(t, dir, "same", "1.0", WheelOptions{})
	_, before, _ := get(t, s.URL()+"same/")
	makeWheel(t, dir, "same", "1.0", WheelOptions{PadBytes: 10})
	_, after, _ := get(t, s.URL()+"same/")
	if before == after {
		t.Errorf("index page unchanged after the wheel changed:\n%s", after)
	}
}

func TestServerCountersConcurrentAndReset(t *testing.T) {
	dir := t.TempDir()
	a := makeWheel(t, dir, "a", "1.0", WheelOptions{PadBytes: 1000})
	b := makeWheel(t, dir, "b", "1.0", WheelOptions{PadBytes: 2000})
	s := startServer(t, dir)
	base := strings.TrimSuffix(s.URL(), "/simple/")

	const rounds = 10
	var wg sync.WaitGroup
	for range rounds {
		for _, p := range []string{a, b} {
			wg.Go(func() {
				resp, err := http.Get(base + "/files/" + filepath.Base(p))
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			})
		}
	}
	wg.Wait()

	sizeA, sizeB := fileSize(t, a), fileSize(t, b)
	if got := s.Downloads(filepath.Base(a)); got != rounds {
		t.Errorf("Downloads(a) = %d, want %d", got, rounds)
	}
	if got := s.TotalDownloads(); got != 2*rounds {
		t.Errorf("TotalDownloads = %d, want %d", got, 2*rounds)
	}
	if got, want := s.BytesServed(), rounds*(sizeA+sizeB); got != want {
		t.Errorf("BytesServed = %d, want %d", got, want)
	}

	s.Reset()
	if s.TotalDownloads() != 0 || s.BytesServed() != 0 || s.Downloads(filepath.Base(a)) != 0 {
		t.Errorf("after Reset: total %d, bytes %d", s.TotalDownloads(), s.BytesServed())
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// Only a lower bound is checked: a loaded machine may be slower, never faster than the throttle.
func TestServerThrottle(t *testing.T) {
	dir := t.TempDir()
	p := makeWheel(t, dir, "slow", "1.0", WheelOptions{PadBytes: 256 << 10})
	s := startServer(t, dir, WithThrottle(1<<20))
	start := time.Now()
	status, body, _ := get(t, strings.TrimSuffix(s.URL(), "/simple/")+"/files/"+filepath.Base(p))
	elapsed := time.Since(start)
	if status != 200 || int64(len(body)) != fileSize(t, p) {
		t.Fatalf("status %d, %d bytes", status, len(body))
	}
	// 256 KiB at 1 MiB/s is 250 ms; allow for the first chunk going out at once.
	if elapsed < 200*time.Millisecond {
		t.Errorf("download took %v, want at least 200ms at 1 MiB/s", elapsed)
	}
}

func TestNewErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		dir     string
		opts    []Option
		wantErr string
	}{
		{"missing dir", filepath.Join(t.TempDir(), "nope"), nil, "no such file"},
		{"not a dir", file, nil, "not a directory"},
		{"bad addr", t.TempDir(), []Option{WithAddr("256.0.0.1:0")}, "listen on 256.0.0.1:0"},
		{"negative throttle", t.TempDir(), []Option{WithThrottle(-1)}, "negative throttle"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.dir, tc.opts...)
			if err == nil {
				s.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("err = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestAddrReportsLoopbackForUnspecified(t *testing.T) {
	s := startServer(t, t.TempDir(), WithAddr("0.0.0.0:0"))
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") {
		t.Errorf("URL = %s, want it on 127.0.0.1", s.URL())
	}
}
