// Package indexproxy is the caching proxy envd runs on 127.0.0.1, for the
// length of one build, in front of the user's package indexes, so that no
// wheel is downloaded twice.
//
// On a plain PEP 503 index (a directory of wheels behind a web server, with
// neither PEP 658 metadata files nor Range support) uv downloads each whole
// wheel while resolving, only to read its METADATA, and throws it away; the
// later install step downloads it again. The proxy gives every index PEP 658
// metadata: it rewrites the index pages so that every link points at the
// proxy and every wheel says its metadata is available. Asked for a wheel's
// .metadata, it passes upstream's through when there is one; otherwise it
// downloads the wheel once into a directory and extracts METADATA from it.
// Asked for the wheel itself, it serves the copy it already has.
package indexproxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Upstream is one package index the proxy stands in front of.
type Upstream struct {
	URL      string // its simple-API URL, e.g. "https://user:pw@pypi.corp.example/simple/"; userinfo = basic auth
	Insecure bool   // trusted host: skip TLS verification for it
}

type Options struct {
	Upstreams []Upstream
	CAPEM     []byte // extra PEM roots trusted besides the system's; may be nil
	Dir       string // where fetched wheels are kept while the proxy runs; created 0700 if missing; Close removes what the proxy put there
	// Addr is where to listen, "127.0.0.1:0" (any free port) when empty. envd gives the same port to every
	// build, because uv keys its cache by the index URL it was given.
	Addr string
}

type Stats struct {
	WheelFetches  int   // whole wheels fetched from upstream
	UpstreamBytes int64 // bytes of wheel bodies read from upstream
	CacheHits     int   // wheel requests answered from Dir
	MetadataMade  int   // .metadata answers the proxy extracted itself
}

// Proxy serves the indexes of Options.Upstreams on 127.0.0.1.
type Proxy struct {
	ups     []upstream
	client  *http.Client
	dir     string
	madeDir bool // Close removes dir too
	ln      net.Listener
	srv     *http.Server
	done    chan struct{} // closed when Serve has returned
	ctx     context.Context
	cancel  context.CancelFunc // ends every request, and so every upstream fetch, on Close
	running sync.WaitGroup     // handlers; Add only under mu while not closed

	mu         sync.Mutex
	closed     bool
	stats      Stats
	advertised map[string]bool        // upstream file URL → whether its index page offered metadata
	locks      map[string]*sync.Mutex // upstream file URL → held while that wheel is fetched
	cached     map[string]string      // upstream file URL → the complete wheel in dir
}

// upstream is a parsed Upstream.
type upstream struct {
	base     *url.URL      // without userinfo, query or fragment; the path ends in "/"
	user     *url.Userinfo // nil: no credentials
	insecure bool
}

// Start listens on Options.Addr and serves in a goroutine until Close.
func Start(o Options) (*Proxy, error) {
	if o.Dir == "" {
		return nil, errors.New("indexproxy: no directory for wheels")
	}
	ups := make([]upstream, len(o.Upstreams))
	for i, u := range o.Upstreams {
		up, err := parseUpstream(u)
		if err != nil {
			return nil, fmt.Errorf("indexproxy: upstream %d: %w", i, err)
		}
		ups[i] = up
	}
	client, err := newClient(ups, o.CAPEM)
	if err != nil {
		return nil, err
	}

	madeDir := false
	if fi, err := os.Stat(o.Dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(o.Dir, 0o700); err != nil {
			return nil, fmt.Errorf("indexproxy: %w", err)
		}
		madeDir = true
	} else if err != nil {
		return nil, fmt.Errorf("indexproxy: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("indexproxy: %s is not a directory", o.Dir)
	}

	addr := o.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	if host, _, err := net.SplitHostPort(addr); err != nil || host != "127.0.0.1" {
		return nil, fmt.Errorf("indexproxy: listen address %q: only 127.0.0.1:PORT", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if madeDir {
			os.Remove(o.Dir)
		}
		return nil, fmt.Errorf("indexproxy: listen: %w", err) // errors.Is(err, syscall.EADDRINUSE) holds
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		ups:        ups,
		client:     client,
		dir:        o.Dir,
		madeDir:    madeDir,
		ln:         ln,
		done:       make(chan struct{}),
		ctx:        ctx,
		cancel:     cancel,
		advertised: map[string]bool{},
		locks:      map[string]*sync.Mutex{},
		cached:     map[string]string{},
	}
	p.srv = &http.Server{
		Handler:           http.HandlerFunc(p.serve),
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	go func() {
		defer close(p.done)
		_ = p.srv.Serve(ln) // http.ErrServerClosed after Close
	}()
	return p, nil
}

func parseUpstream(u Upstream) (upstream, error) {
	base, err := url.Parse(u.URL)
	if err != nil {
		// url.Parse's error repeats the URL, credentials and all.
		return upstream{}, errors.New("not a valid URL")
	}
	if base.Scheme != "http" && base.Scheme != "https" || base.Host == "" {
		return upstream{}, fmt.Errorf("%s is not an http(s) URL", base.Redacted())
	}
	up := upstream{user: base.User, insecure: u.Insecure}
	b := *base
	b.User = nil
	b.RawQuery, b.ForceQuery = "", false
	b.Fragment, b.RawFragment = "", ""
	if !strings.HasSuffix(b.Path, "/") {
		b.Path += "/"
		if b.RawPath != "" {
			b.RawPath += "/"
		}
	}
	up.base = &b
	return up, nil
}

// IndexURL returns the URL that stands for Upstreams[i], for uv's --index-url.
func (p *Proxy) IndexURL(i int) string {
	return fmt.Sprintf("http://%s/i/%d/", p.ln.Addr(), i)
}

// Stats returns the counters so far.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// Close stops serving, waits for the requests in progress to end (their upstream fetches are cancelled) and
// removes the wheels the proxy wrote, and Dir if the proxy made it.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()

	p.cancel()
	err := p.srv.Close()
	<-p.done
	p.running.Wait()
	p.client.CloseIdleConnections()

	errs := []error{err}
	for _, file := range p.cached {
		if err := os.Remove(file); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if p.madeDir {
		if err := os.Remove(p.dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		http.Error(w, "indexproxy: closed", http.StatusServiceUnavailable)
		return
	}
	p.running.Add(1)
	p.mu.Unlock()
	defer p.running.Done()

	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "indexproxy: only GET and HEAD", http.StatusMethodNotAllowed)
		return
	}
	switch {
	case strings.HasPrefix(r.URL.Path, "/i/"):
		p.servePage(w, r)
	case strings.HasPrefix(r.URL.Path, "/f/"):
		p.serveFile(w, r)
	default:
		http.NotFound(w, r)
	}
}

// servePage answers /i/<n>/<rest>: upstream n's page <rest>, its links pointing through the proxy.
func (p *Proxy) servePage(w http.ResponseWriter, r *http.Request) {
	num, rest, slash := strings.Cut(strings.TrimPrefix(r.URL.EscapedPath(), "/i/"), "/")
	n, err := strconv.Atoi(num)
	if err != nil || n < 0 || n >= len(p.ups) || num != strconv.Itoa(n) {
		http.NotFound(w, r)
		return
	}
	if !slash {
		http.Redirect(w, r, "/i/"+num+"/", http.StatusMovedPermanently)
		return
	}
	if segs := r.URL.Path + "/"; strings.Contains(segs, "/../") || strings.Contains(segs, "/./") {
		http.NotFound(w, r) // the credentials are for the index, not for climbing out of it
		return
	}
	up := p.ups[n]
	target, err := url.Parse(up.base.String() + rest)
	if err != nil {
		http.Error(w, "indexproxy: bad path", http.StatusBadRequest)
		return
	}
	target.RawQuery = r.URL.RawQuery

	// Pages are small: fetched whole even for a HEAD, so that the headers are those of the rewritten page.
	resp, err := p.fetch(r, http.MethodGet, target, true)
	if err != nil {
		badGateway(w, target, err.Error())
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		relay(w, r, target, resp) // 404 stays 404: uv reads it as "no such project"
		return
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		badGateway(w, target, "reading the page: "+describe(err))
		return
	}

	l := &linker{index: up.base, prefix: "/i/" + num + "/", record: p.recordAdvertised}
	contentType := resp.Header.Get("Content-Type")
	pageURL := resp.Request.URL // after redirects: what relative links are relative to
	switch pageKind(contentType) {
	case "html":
		body = l.rewriteHTML(body, pageURL)
	case "json":
		if body, err = l.rewriteJSON(body, pageURL); err != nil {
			badGateway(w, target, "page is not valid JSON")
			return
		}
	}
	if contentType != "" {
		w.Header().Set("Content-Type", contentType)
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// serveFile answers /f/<token>/<name>, where token is the upstream file URL and name its last path segment,
// or that with ".metadata" appended for the file's PEP 658 metadata.
func (p *Proxy) serveFile(w http.ResponseWriter, r *http.Request) {
	token, name, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/f/"), "/")
	key, u, err := decodeToken(token)
	if !ok || err != nil || strings.Contains(name, "/") {
		http.NotFound(w, r)
		return
	}
	file := path.Base(u.Path)
	switch {
	case name == file && isWheel(file):
		p.serveWheel(w, r, key, u)
	case name == file:
		p.passThrough(w, r, u) // sdists and the like are not cached: the resolver does not download them twice
	case name == file+".metadata" && isWheel(file):
		p.serveMetadata(w, r, key, u)
	case name == file+".metadata":
		p.passThrough(w, r, metadataURL(u))
	default:
		http.NotFound(w, r)
	}
}

func (p *Proxy) recordAdvertised(key string, advertised bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.advertised[key] = advertised
}

// fetch sends one request upstream on behalf of the client's request r, with its User-Agent and, for a page
// (where it picks HTML or JSON), its Accept.
func (p *Proxy) fetch(r *http.Request, method string, u *url.URL, page bool) (*http.Response, error) {
	req, err := http.NewRequestWithContext(r.Context(), method, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", r.Header.Get("User-Agent"))
	if accept := r.Header.Get("Accept"); page && accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, errors.New(describe(err))
	}
	return resp, nil
}

// passThrough answers with upstream's answer for u, uncached.
func (p *Proxy) passThrough(w http.ResponseWriter, r *http.Request, u *url.URL) {
	resp, err := p.fetch(r, r.Method, u, false)
	if err != nil {
		badGateway(w, u, err.Error())
		return
	}
	defer resp.Body.Close()
	relay(w, r, u, resp)
}

// relay copies an upstream answer to the client: status, Content-Type, Content-Length and body. Upstream's
// server errors become 502s that say which upstream failed.
func relay(w http.ResponseWriter, r *http.Request, u *url.URL, resp *http.Response) {
	if resp.StatusCode >= 500 {
		badGateway(w, u, "answered "+resp.Status)
		return
	}
	copyHeaders(w, resp)
	w.WriteHeader(resp.StatusCode)
	if r.Method != http.MethodHead {
		copyBody(w, resp.Body)
	}
}

// copyHeaders sets the headers the proxy forwards. Accept-Ranges is not among them: uv is not to try Range
// requests against the proxy, which always answers with whole files.
func copyHeaders(w http.ResponseWriter, resp *http.Response) {
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	if resp.ContentLength >= 0 {
		w.Header().Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	}
}

// immutable says a file or its metadata never changes (an index's file names are versioned, and uv pins the
// hash): uv's cache then keeps it without asking again, and a later build, through a new proxy with an empty
// Dir, finds it there.
func immutable(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "max-age=365000000, immutable, public")
}

// copyBody streams a body to the client. If it breaks off, the connection is cut, so that a client reading a
// chunked answer cannot take the part for the whole.
func copyBody(w io.Writer, body io.Reader) {
	if _, err := io.Copy(w, body); err != nil {
		panic(http.ErrAbortHandler)
	}
}

// badGateway answers 502, naming the upstream host (never its credentials: the URLs here carry none).
func badGateway(w http.ResponseWriter, u *url.URL, problem string) {
	http.Error(w, fmt.Sprintf("indexproxy: upstream %s: %s", u.Host, problem), http.StatusBadGateway)
}

// describe returns err without the URL that http.Client's errors repeat.
func describe(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error()
}

// pageKind tells the two page formats uv reads, "html" (PEP 503) and "json" (PEP 691), by their media type;
// "" for anything else, which is passed on as it is.
func pageKind(contentType string) string {
	mt, _, _ := strings.Cut(contentType, ";")
	switch strings.ToLower(strings.TrimSpace(mt)) {
	case "text/html", "application/vnd.pypi.simple.v1+html":
		return "html"
	case "application/vnd.pypi.simple.v1+json":
		return "json"
	}
	return ""
}

func isWheel(file string) bool {
	return strings.HasSuffix(strings.ToLower(file), ".whl")
}

// metadataURL is where PEP 658 puts the metadata of the file at u.
func metadataURL(u *url.URL) *url.URL {
	m := *u
	m.Path += ".metadata"
	if m.RawPath != "" {
		m.RawPath += ".metadata"
	}
	return &m
}

// newClient returns the client for every upstream request: system roots plus caPEM, TLS verification skipped
// only for the hosts of Insecure upstreams, and credentials only for their own upstream's origin. The choice is
// made per request, so each hop of a redirect gets what its own host should get.
func newClient(ups []upstream, caPEM []byte) (*http.Client, error) {
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool() // no system roots (a minimal image): trust caPEM alone
	}
	if len(caPEM) > 0 && !roots.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("indexproxy: no certificate in the CA PEM")
	}
	rt := &router{
		secure:   newTransport(&tls.Config{RootCAs: roots}),
		insecure: newTransport(&tls.Config{InsecureSkipVerify: true}),
		ups:      ups,
	}
	// No Timeout: a big wheel may take long; the transport bounds dialing and waiting for headers.
	return &http.Client{Transport: rt}, nil
}

func newTransport(tc *tls.Config) *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tc,
		TLSHandshakeTimeout:   30 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		ForceAttemptHTTP2:     true, // a custom TLSClientConfig turns HTTP/2 off otherwise
		MaxIdleConnsPerHost:   16,   // uv downloads in parallel
		IdleConnTimeout:       90 * time.Second,
	}
}

// router is the client's RoundTripper: it picks the transport and credentials by the host a request goes to.
type router struct {
	secure, insecure *http.Transport
	ups              []upstream
}

func (rt *router) RoundTrip(req *http.Request) (*http.Response, error) {
	t := rt.secure
	for _, up := range rt.ups {
		if up.insecure && strings.EqualFold(up.base.Hostname(), req.URL.Hostname()) {
			t = rt.insecure
		}
	}
	if user := rt.credentials(req.URL); user != nil && req.Header.Get("Authorization") == "" {
		req = req.Clone(req.Context()) // a RoundTripper must not change the caller's request
		pw, _ := user.Password()
		req.SetBasicAuth(user.Username(), pw)
	}
	return t.RoundTrip(req)
}

// credentials returns the userinfo of the upstream on u's origin; of several there, the one with the longest
// path u is under, else the first.
func (rt *router) credentials(u *url.URL) *url.Userinfo {
	var user *url.Userinfo
	best := -2
	for _, up := range rt.ups {
		if up.user == nil || origin(up.base) != origin(u) {
			continue
		}
		score := -1
		if strings.HasPrefix(u.Path, up.base.Path) {
			score = len(up.base.Path)
		}
		if score > best {
			best, user = score, up.user
		}
	}
	return user
}

func (rt *router) CloseIdleConnections() {
	rt.secure.CloseIdleConnections()
	rt.insecure.CloseIdleConnections()
}

// origin is scheme, host and port, with the scheme's default port filled in.
func origin(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[scheme]
	}
	return scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}
