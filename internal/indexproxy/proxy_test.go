package indexproxy

import (
	"bytes"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"envd.dev/envd/internal/testing/pyindex"
)

const alphaWheel = "alpha-1.0-py3-none-any.whl"

// newIndex serves a pyindex with alpha 1.0 (and its padding, so a download is not trivially small) and returns it
// with the wheel's path.
func newIndex(t *testing.T, opts ...pyindex.Option) (*pyindex.Server, string) {
	t.Helper()
	dir := t.TempDir()
	wheel, err := pyindex.MakeWheel(dir, "alpha", "1.0", pyindex.WheelOptions{PadBytes: 200 << 10})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := pyindex.New(dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv, wheel
}

// startProxy starts a proxy over ups with a wheel directory the proxy has to make.
func startProxy(t *testing.T, ups ...Upstream) (*Proxy, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "wheels")
	p, err := Start(Options{Upstreams: ups, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p, dir
}

func do(t *testing.T, method, url string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func get(t *testing.T, url string) []byte {
	t.Helper()
	resp, body := do(t, http.MethodGet, url)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, body)
	}
	return body
}

var anchorTagRE = regexp.MustCompile(`<a [^>]*>`)

// wheelLink returns the proxy URL of file, and its <a> tag, from the project page.
func wheelLink(t *testing.T, p *Proxy, project, file string) (string, string) {
	t.Helper()
	page := get(t, p.IndexURL(0)+project+"/")
	for _, tag := range anchorTagRE.FindAllString(string(page), -1) {
		m := regexp.MustCompile(`href="(/f/[^"#]+/` + regexp.QuoteMeta(file) + `)(#[^"]*)?"`).FindStringSubmatch(tag)
		if m != nil {
			return "http://" + p.ln.Addr().String() + m[1], tag
		}
	}
	t.Fatalf("no proxy link to %s in\n%s", file, page)
	return "", ""
}

func TestPlainIndex(t *testing.T) {
	srv, wheelPath := newIndex(t, pyindex.WithoutMetadata())
	p, dir := startProxy(t, Upstream{URL: srv.URL()})

	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("wheel directory: %v, %v; want mode 0700", fi, err)
	}
	link, tag := wheelLink(t, p, "alpha", alphaWheel)
	if !strings.Contains(tag, `data-dist-info-metadata="true"`) || !strings.Contains(tag, `data-core-metadata="true"`) ||
		!strings.Contains(tag, "#sha256=") {
		t.Errorf("link without metadata attributes or hash: %s", tag)
	}

	meta := string(get(t, link+".metadata"))
	if !strings.Contains(meta, "Name: alpha\n") || !strings.Contains(meta, "Version: 1.0\n") {
		t.Errorf("metadata:\n%s", meta)
	}
	if n := srv.Downloads(alphaWheel); n != 1 {
		t.Errorf("upstream downloads after .metadata = %d, want 1", n)
	}

	body := get(t, link)
	want, err := os.ReadFile(wheelPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(body, want) {
		t.Errorf("wheel through the proxy: %d bytes differ from the %d of the file", len(body), len(want))
	}
	if n := srv.Downloads(alphaWheel); n != 1 {
		t.Errorf("upstream downloads after the wheel = %d, want still 1", n)
	}
	wantStats := Stats{WheelFetches: 1, UpstreamBytes: int64(len(want)), CacheHits: 1, MetadataMade: 1}
	if got := p.Stats(); got != wantStats {
		t.Errorf("Stats = %+v, want %+v", got, wantStats)
	}
}

func TestIndexWithMetadata(t *testing.T) {
	srv, _ := newIndex(t)
	p, _ := startProxy(t, Upstream{URL: srv.URL()})

	link, tag := wheelLink(t, p, "alpha", alphaWheel)
	if !strings.Contains(tag, `data-dist-info-metadata="sha256=`) || strings.Contains(tag, `="true"`) {
		t.Errorf("upstream's metadata attributes not kept as they were: %s", tag)
	}
	meta := string(get(t, link+".metadata"))
	if !strings.Contains(meta, "Name: alpha\n") {
		t.Errorf("metadata:\n%s", meta)
	}
	if n := srv.Downloads(alphaWheel); n != 0 {
		t.Errorf("upstream downloads after .metadata = %d, want 0: upstream's metadata is to be passed through", n)
	}
	if s := p.Stats(); s.WheelFetches != 0 || s.MetadataMade != 0 {
		t.Errorf("Stats = %+v, want nothing fetched or made", s)
	}
	get(t, link)
	if n := srv.Downloads(alphaWheel); n != 1 {
		t.Errorf("upstream downloads after the wheel = %d, want 1", n)
	}
}

func TestConcurrentWheelFetchedOnce(t *testing.T) {
	srv, wheelPath := newIndex(t, pyindex.WithoutMetadata(), pyindex.WithThrottle(2<<20)) // slow enough to overlap
	p, _ := startProxy(t, Upstream{URL: srv.URL()})
	link, _ := wheelLink(t, p, "alpha", alphaWheel)

	const n = 5
	bodies := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			resp, err := http.Get(link)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			bodies[i], _ = io.ReadAll(resp.Body)
		})
	}
	wg.Wait()
	want, _ := os.ReadFile(wheelPath)
	for i, b := range bodies {
		if !bytes.Equal(b, want) {
			t.Errorf("body %d: %d bytes, not the wheel's %d", i, len(b), len(want))
		}
	}
	if d := srv.Downloads(alphaWheel); d != 1 {
		t.Errorf("upstream downloads = %d, want 1", d)
	}
	if s := p.Stats(); s.WheelFetches != 1 || s.CacheHits != n-1 {
		t.Errorf("Stats = %+v, want 1 fetch and %d cache hits", s, n-1)
	}
}

func TestHeadAndRange(t *testing.T) {
	srv, wheelPath := newIndex(t, pyindex.WithoutMetadata())
	p, _ := startProxy(t, Upstream{URL: srv.URL()})
	link, _ := wheelLink(t, p, "alpha", alphaWheel)
	want, _ := os.ReadFile(wheelPath)

	resp, _ := do(t, http.MethodHead, link)
	if resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(want)) {
		t.Errorf("HEAD: %s, length %d; want 200, %d", resp.Status, resp.ContentLength, len(want))
	}
	resp, _ = do(t, http.MethodHead, link+".metadata")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("HEAD .metadata: %s", resp.Status)
	}
	if d := srv.Downloads(alphaWheel); d != 0 {
		t.Errorf("upstream downloads after HEADs = %d, want 0", d)
	}

	for range 2 { // fetched, then from Dir
		resp, body := do(t, http.MethodGet, link, "Range", "bytes=0-9")
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, want) {
			t.Errorf("GET with Range: %s, %d bytes; want 200 and the whole %d", resp.Status, len(body), len(want))
		}
		if ar := resp.Header.Get("Accept-Ranges"); ar != "" {
			t.Errorf("Accept-Ranges: %q advertised", ar)
		}
	}
	resp, _ = do(t, http.MethodHead, link)
	if resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(want)) || resp.Header.Get("Accept-Ranges") != "" {
		t.Errorf("HEAD of the cached wheel: %s, length %d, Accept-Ranges %q", resp.Status, resp.ContentLength, resp.Header.Get("Accept-Ranges"))
	}
	if d := srv.Downloads(alphaWheel); d != 1 {
		t.Errorf("upstream downloads = %d, want 1", d)
	}
}

func TestNotFoundPassedThrough(t *testing.T) {
	srv, _ := newIndex(t, pyindex.WithoutMetadata())
	p, _ := startProxy(t, Upstream{URL: srv.URL()})
	for _, u := range []string{
		p.IndexURL(0) + "nosuch/",
		p.IndexURL(1),
		p.IndexURL(0) + "alpha/../../files/" + alphaWheel,
		p.IndexURL(0) + "%2e%2e/files/" + alphaWheel,
		"http://" + p.ln.Addr().String() + "/f/!!/x.whl",
		"http://" + p.ln.Addr().String() + "/f/" + token(srv.URL()+"alpha/") + "/x.whl",
	} {
		if resp, _ := do(t, http.MethodGet, u); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %s, want 404", u, resp.Status)
		}
	}
}

func TestUpstreamDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	ln.Close()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
	}))
	t.Cleanup(failing.Close)
	failingHost := strings.TrimPrefix(failing.URL, "http://")

	tests := []struct {
		name, host string
	}{
		{"connection refused", refused},
		{"503", failingHost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := startProxy(t, Upstream{URL: "http://u:secret@" + tt.host + "/simple/"})
			for _, u := range []string{
				p.IndexURL(0) + "alpha/",
				"http://" + p.ln.Addr().String() + "/f/" + token("http://"+tt.host+"/files/"+alphaWheel) + "/" + alphaWheel + ".metadata",
			} {
				resp, body := do(t, http.MethodGet, u)
				if resp.StatusCode != http.StatusBadGateway {
					t.Errorf("GET %s: %s, want 502", u, resp.Status)
				}
				if !strings.Contains(string(body), tt.host) || strings.Contains(string(body), "secret") {
					t.Errorf("502 body must name %s and hold no credentials: %q", tt.host, body)
				}
			}
		})
	}
}

func TestCredentialsOnlyForTheirHost(t *testing.T) {
	type seen struct{ path, auth string }
	var mu sync.Mutex
	var requests []seen
	record := func(r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		requests = append(requests, seen{r.Host + r.URL.Path, r.Header.Get("Authorization")})
	}
	wheelDir := t.TempDir()
	wheelPath, err := pyindex.MakeWheel(wheelDir, "alpha", "1.0", pyindex.WheelOptions{})
	if err != nil {
		t.Fatal(err)
	}
	serveWheel := func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, wheelPath)
	}
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		record(r)
		serveWheel(w, r)
	}))
	t.Cleanup(other.Close)
	var private *httptest.Server
	private = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		record(r)
		if u, pw, ok := r.BasicAuth(); !ok || u != "u" || pw != "secret" {
			http.Error(w, "who are you", http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/simple/alpha/":
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprintf(w, `<a href="/files/%s">mine</a><a href="%s/elsewhere/%s">theirs</a>`, alphaWheel, other.URL, alphaWheel)
		case "/files/" + alphaWheel:
			serveWheel(w, r)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(private.Close)

	p, _ := startProxy(t, Upstream{URL: "http://u:secret@" + strings.TrimPrefix(private.URL, "http://") + "/simple"})
	page := string(get(t, p.IndexURL(0)+"alpha/"))
	links := regexp.MustCompile(`href="(/f/([^"/]+)/[^"]+)"`).FindAllStringSubmatch(page, -1)
	if len(links) != 2 {
		t.Fatalf("want 2 proxy links in %s", page)
	}
	for _, l := range links {
		key, _, err := decodeToken(l[2])
		if err != nil || strings.Contains(key, "secret") || strings.Contains(page, "secret") {
			t.Errorf("credentials in a served URL: %s (%v)", key, err)
		}
		get(t, "http://"+p.ln.Addr().String()+l[1]+".metadata")
	}

	privateHost := strings.TrimPrefix(private.URL, "http://")
	mu.Lock()
	defer mu.Unlock()
	var otherSeen int
	for _, r := range requests {
		switch {
		case strings.HasPrefix(r.path, privateHost) && r.auth == "":
			t.Errorf("%s requested without credentials", r.path)
		case !strings.HasPrefix(r.path, privateHost) && r.auth != "":
			t.Errorf("credentials sent to another host: %s", r.path)
		case !strings.HasPrefix(r.path, privateHost):
			otherSeen++
		}
	}
	if otherSeen == 0 {
		t.Errorf("the other host's wheel was never fetched: %v", requests)
	}
}

func TestTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<a href="/files/%s">x</a>`, alphaWheel)
	}))
	t.Cleanup(srv.Close)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})

	tests := []struct {
		name     string
		insecure bool
		ca       []byte
		want     int
	}{
		{"unknown certificate", false, nil, http.StatusBadGateway},
		{"insecure host", true, nil, http.StatusOK},
		{"extra CA", false, ca, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Start(Options{Upstreams: []Upstream{{URL: srv.URL + "/simple/", Insecure: tt.insecure}}, CAPEM: tt.ca, Dir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if resp, body := do(t, http.MethodGet, p.IndexURL(0)+"alpha/"); resp.StatusCode != tt.want {
				t.Errorf("%s: %s", resp.Status, body)
			}
		})
	}
}

func TestCloseRemovesWheels(t *testing.T) {
	srv, _ := newIndex(t, pyindex.WithoutMetadata())

	t.Run("directory made by the proxy", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "wheels")
		p, err := Start(Options{Upstreams: []Upstream{{URL: srv.URL()}}, Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		link, _ := wheelLink(t, p, "alpha", alphaWheel)
		get(t, link)
		// The wheel streams to the client as it arrives and is moved into
		// place once whole: the client may have it all a moment before.
		var files []string
		for deadline := time.Now().Add(5 * time.Second); len(files) != 1 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			files, _ = filepath.Glob(filepath.Join(dir, "*.whl"))
		}
		if len(files) != 1 {
			t.Fatalf("wheels in Dir before Close: %v", files)
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("Dir still there after Close: %v", err)
		}
		if err := p.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	})

	t.Run("directory of the caller", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "keep"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		p, err := Start(Options{Upstreams: []Upstream{{URL: srv.URL()}}, Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		link, _ := wheelLink(t, p, "alpha", alphaWheel)
		get(t, link+".metadata")
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 1 || entries[0].Name() != "keep" {
			t.Errorf("after Close, Dir holds %v; want only the caller's file", entries)
		}
	})
}
