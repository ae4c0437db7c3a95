package pyindex

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Server is a PEP 503 simple index over the wheels in one directory:
//
//	/simple/            every project, by normalized name
//	/simple/<project>/  links to /files/<wheel>#sha256=<hex>
//	/files/<wheel>      the wheel itself
//
// The directory is read on every request, so wheels written after New are served too.
type Server struct {
	dir      string
	listener net.Listener
	http     *http.Server
	done     chan struct{}
	limit    *limiter // nil: unthrottled
	plain    bool     // no PEP 658 metadata

	mu        sync.Mutex
	downloads map[string]int
	bytes     int64
	hashes    map[string]fileHash // by file name; recomputed when size or mtime change
}

type fileHash struct {
	size int64
	mod  time.Time
	hex  string
}

// Option configures a Server.
type Option func(*config)

type config struct {
	addr     string
	throttle int64
	plain    bool
}

// WithAddr sets the listen address (default "127.0.0.1:0"). BuildKit's build steps share the host network and
// reach the default; containers on Docker's bridge need the bridge address, e.g. "172.17.0.1:0".
func WithAddr(addr string) Option { return func(c *config) { c.addr = addr } }

// WithThrottle caps the bytes per second served, shared by all downloads, as a network link would.
func WithThrottle(bytesPerSecond int64) Option {
	return func(c *config) { c.throttle = bytesPerSecond }
}

// WithoutMetadata serves a plain PEP 503 index, as a directory of wheels
// behind a web server is: no PEP 658 metadata files (and, as always here,
// no Range requests), so an installer that wants a wheel's metadata must
// fetch the whole wheel.
func WithoutMetadata() Option { return func(c *config) { c.plain = true } }

// New starts serving the wheels in dir. Close stops it.
func New(dir string, opts ...Option) (*Server, error) {
	cfg := config{addr: "127.0.0.1:0"}
	for _, o := range opts {
		o(&cfg)
	}
	if fi, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("pyindex: wheel directory: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("pyindex: %s is not a directory", dir)
	}
	if cfg.throttle < 0 {
		return nil, fmt.Errorf("pyindex: negative throttle %d", cfg.throttle)
	}
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return nil, fmt.Errorf("pyindex: listen on %s: %w", cfg.addr, err)
	}

	s := &Server{
		dir:       dir,
		listener:  ln,
		done:      make(chan struct{}),
		downloads: map[string]int{},
		hashes:    map[string]fileHash{},
		plain:     cfg.plain,
	}
	if cfg.throttle > 0 {
		s.limit = &limiter{rate: cfg.throttle}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /simple/{$}", s.serveRoot)
	mux.HandleFunc("GET /simple/{project}/{$}", s.serveProject)
	mux.HandleFunc("GET /simple/{project}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.Path+"/", http.StatusMovedPermanently)
	})
	mux.HandleFunc("GET /files/{file}", s.serveFile)
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(s.done)
		_ = s.http.Serve(ln) // returns http.ErrServerClosed after Close
	}()
	return s, nil
}

// URL returns the index URL for pip's --index-url, e.g. http://127.0.0.1:40123/simple/.
func (s *Server) URL() string {
	return "http://" + s.Addr() + "/simple/"
}

// Addr returns host:port of the index. An unspecified listen address (0.0.0.0) is reported as 127.0.0.1.
func (s *Server) Addr() string {
	a := s.listener.Addr().(*net.TCPAddr)
	ip := a.IP
	if ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(a.Port))
}

// Close stops the server and waits for it; open downloads are cut. Like httptest.Server's, it returns nothing,
// so it can be given to t.Cleanup directly.
func (s *Server) Close() {
	_ = s.http.Close() // only fails closing a listener that is going away anyway
	<-s.done
}

// Downloads returns how many times file (a wheel's base name) was requested.
func (s *Server) Downloads(file string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.downloads[file]
}

// TotalDownloads returns how many wheel requests were served, over all files.
func (s *Server) TotalDownloads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.downloads {
		n += c
	}
	return n
}

// DownloadCounts returns a copy of the per-file counters, handy for comparing with an expected map.
func (s *Server) DownloadCounts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]int, len(s.downloads))
	for f, c := range s.downloads {
		m[f] = c
	}
	return m
}

// BytesServed returns the wheel bytes written to clients (index pages are not counted).
func (s *Server) BytesServed() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}

// Reset zeroes the counters, e.g. between a first build and a rebuild.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.downloads)
	s.bytes = 0
}

// wheel is one file in the directory.
type wheel struct {
	file    string
	project string // normalized
}

// scan lists the wheels in the directory, sorted by file name.
func (s *Server) scan() ([]wheel, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	var wheels []wheel
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".whl") {
			continue
		}
		// A wheel is named {distribution}-{version}(-{build})?-{python}-{abi}-{platform}.whl.
		dist, _, ok := strings.Cut(name, "-")
		if !ok {
			continue
		}
		wheels = append(wheels, wheel{file: name, project: NormalizeName(dist)})
	}
	return wheels, nil
}

func (s *Server) serveRoot(w http.ResponseWriter, r *http.Request) {
	wheels, err := s.scan()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	var projects []string
	for _, wh := range wheels {
		projects = append(projects, wh.project)
	}
	slices.Sort(projects)
	var b strings.Builder
	writeHeader(&b, "Simple index")
	for _, p := range slices.Compact(projects) {
		fmt.Fprintf(&b, "<a href=\"/simple/%s/\">%s</a><br>\n", html.EscapeString(p), html.EscapeString(p))
	}
	b.WriteString("</body></html>\n")
	writeHTML(w, b.String())
}

func (s *Server) serveProject(w http.ResponseWriter, r *http.Request) {
	project := r.PathValue("project")
	if norm := NormalizeName(project); norm != project {
		http.Redirect(w, r, "/simple/"+norm+"/", http.StatusMovedPermanently)
		return
	}
	wheels, err := s.scan()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	var b strings.Builder
	writeHeader(&b, "Links for "+project)
	found := false
	for _, wh := range wheels {
		if wh.project != project {
			continue
		}
		sum, err := s.hash(wh.file)
		if errors.Is(err, os.ErrNotExist) {
			continue // removed since the scan
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		found = true
		f := html.EscapeString(wh.file)
		meta := ""
		if m, err := metadataHash(filepath.Join(s.dir, wh.file)); err == nil && !s.plain {
			meta = fmt.Sprintf(` data-dist-info-metadata="sha256=%s" data-core-metadata="sha256=%s"`, m, m)
		}
		fmt.Fprintf(&b, "<a href=\"/files/%s#sha256=%s\"%s>%s</a><br>\n", f, sum, meta, f)
	}
	if !found {
		// pip reads a 404 as "no such project" and says so.
		http.NotFound(w, r)
		return
	}
	b.WriteString("</body></html>\n")
	writeHTML(w, b.String())
}

func writeHeader(b *strings.Builder, title string) {
	fmt.Fprintf(b, "<!DOCTYPE html>\n<html><head><meta name=\"pypi:repository-version\" content=\"1.0\">"+
		"<title>%s</title></head><body>\n", html.EscapeString(title))
}

func writeHTML(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = io.WriteString(w, body)
}

// hash returns the file's sha256 in hex, cached while its size and mtime stay the same: hashing every wheel on
// every index request would dominate a benchmark with hundreds of megabytes of wheels.
func (s *Server) hash(file string) (string, error) {
	path := filepath.Join(s.dir, file)
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	h, ok := s.hashes[file]
	s.mu.Unlock()
	if ok && h.size == fi.Size() && h.mod.Equal(fi.ModTime()) {
		return h.hex, nil
	}

	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	d := sha256.New()
	if _, err := io.Copy(d, f); err != nil {
		return "", err
	}
	sum := hex.EncodeToString(d.Sum(nil))
	s.mu.Lock()
	s.hashes[file] = fileHash{size: fi.Size(), mod: fi.ModTime(), hex: sum}
	s.mu.Unlock()
	return sum, nil
}

func (s *Server) serveFile(w http.ResponseWriter, r *http.Request) {
	file := r.PathValue("file")
	if wheel, ok := strings.CutSuffix(file, ".metadata"); ok && wheel == filepath.Base(wheel) && strings.HasSuffix(wheel, ".whl") && !s.plain {
		s.serveMetadata(w, r, wheel)
		return
	}
	if file != filepath.Base(file) || strings.HasPrefix(file, ".") || !strings.HasSuffix(file, ".whl") {
		http.NotFound(w, r)
		return
	}
	f, err := os.Open(filepath.Join(s.dir, file))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(fi.Size(), 10))
	// A released file never changes, and PyPI says so: pip's HTTP cache
	// keeps a wheel only when the response allows it.
	w.Header().Set("Cache-Control", "max-age=365000000, immutable, public")
	if r.Method == http.MethodHead {
		return // a HEAD is not a download
	}

	s.mu.Lock()
	s.downloads[file]++
	s.mu.Unlock()
	// Count as we go, so a download cut short counts only what was sent.
	_, _ = io.Copy(&countingWriter{w: w, s: s}, f)
}

// countingWriter adds every byte written to the server's total, after waiting for the throttle.
type countingWriter struct {
	w io.Writer
	s *Server
}

// chunk bounds each write, so the throttle paces a download smoothly instead of in one burst.
const chunk = 32 << 10

func (c *countingWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n := min(len(p), chunk)
		if c.s.limit != nil {
			c.s.limit.wait(n)
		}
		m, err := c.w.Write(p[:n])
		written += m
		c.s.mu.Lock()
		c.s.bytes += int64(m)
		c.s.mu.Unlock()
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

// limiter spaces writes so that, over all downloads together, no more than rate bytes go out per second.
type limiter struct {
	rate int64

	mu   sync.Mutex
	next time.Time // when the link is free again
}

func (l *limiter) wait(n int) {
	l.mu.Lock()
	now := time.Now()
	if l.next.Before(now) {
		l.next = now
	}
	l.next = l.next.Add(time.Duration(int64(n) * int64(time.Second) / l.rate))
	until := l.next
	l.mu.Unlock()
	time.Sleep(time.Until(until))
}
