package indexproxy

import (
	"archive/zip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// maxMetadata bounds the METADATA read from a wheel; real ones are kilobytes.
const maxMetadata = 32 << 20

// token names an upstream file URL in a proxy path.
func token(fileURL string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(fileURL))
}

// decodeToken returns the upstream file URL a token stands for, both as the key the proxy files it under (the
// string the token was made of) and parsed.
func decodeToken(tok string) (string, *url.URL, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return "", nil, err
	}
	key := string(b)
	u, err := url.Parse(key)
	if err != nil {
		return "", nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.User != nil || u.Fragment != "" {
		return "", nil, errors.New("not an upstream file URL")
	}
	return key, u, nil
}

// serveWheel answers for a wheel: from Dir if it is there, else fetched from upstream (once, however many ask
// at the same time) and kept.
func (p *Proxy) serveWheel(w http.ResponseWriter, r *http.Request, key string, u *url.URL) {
	if file, ok := p.cachedFile(key); ok {
		p.serveCached(w, r, file)
		return
	}
	if r.Method == http.MethodHead {
		p.passThrough(w, r, u) // a HEAD never costs a wheel download
		return
	}
	unlock := p.lockFile(key)
	file, ok := p.cachedFile(key) // another request may have fetched it while this one waited
	if !ok {
		defer unlock()
		p.fetchWheel(w, r, key, u, true)
		return
	}
	unlock()
	p.serveCached(w, r, file)
}

// serveMetadata answers for a wheel's .metadata: upstream's own if it has some, else extracted from the wheel,
// which is fetched into Dir for it (and so not fetched again when uv installs it).
func (p *Proxy) serveMetadata(w http.ResponseWriter, r *http.Request, key string, u *url.URL) {
	p.mu.Lock()
	advertised, known := p.advertised[key]
	p.mu.Unlock()
	if (advertised || !known) && p.relayIfOK(w, r, metadataURL(u)) {
		return
	}

	file, ok := p.cachedFile(key)
	if !ok && r.Method == http.MethodHead {
		p.headMetadata(w, r, u)
		return
	}
	if !ok {
		if file, ok = p.ensureWheel(w, r, key, u); !ok {
			return
		}
	}
	data, err := readMetadata(file)
	if err != nil {
		http.Error(w, fmt.Sprintf("indexproxy: %s: %v", path.Base(u.Path), err), http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	immutable(w)
	if r.Method == http.MethodHead {
		return
	}
	p.mu.Lock()
	p.stats.MetadataMade++
	p.mu.Unlock()
	_, _ = w.Write(data)
}

// relayIfOK passes upstream's answer for u on if it is a 200, and reports whether it did. Anything else (404,
// an error) leaves the answer to the caller.
func (p *Proxy) relayIfOK(w http.ResponseWriter, r *http.Request, u *url.URL) bool {
	resp, err := p.fetch(r, r.Method, u, false)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false
	}
	immutable(w)
	relay(w, r, u, resp)
	return true
}

// headMetadata answers a HEAD for the metadata of a wheel not yet in Dir. Without downloading it, only
// upstream's HEAD for the wheel can tell whether there is any.
func (p *Proxy) headMetadata(w http.ResponseWriter, r *http.Request, u *url.URL) {
	resp, err := p.fetch(r, http.MethodHead, u, false)
	if err != nil {
		badGateway(w, u, err.Error())
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		relay(w, r, u, resp)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
}

// ensureWheel makes sure the wheel is complete in Dir and returns its file. If it cannot, it has answered
// the client and returns false.
func (p *Proxy) ensureWheel(w http.ResponseWriter, r *http.Request, key string, u *url.URL) (string, bool) {
	unlock := p.lockFile(key)
	defer unlock()
	if file, ok := p.cachedFile(key); ok {
		return file, true
	}
	return p.fetchWheel(w, r, key, u, false)
}

// fetchWheel downloads the wheel into Dir; the caller holds its lock. With stream, the body also goes to the
// client as it arrives. It returns the complete file, or false once it has answered the client with the failure.
func (p *Proxy) fetchWheel(w http.ResponseWriter, r *http.Request, key string, u *url.URL, stream bool) (string, bool) {
	resp, err := p.fetch(r, http.MethodGet, u, false)
	if err != nil {
		badGateway(w, u, err.Error())
		return "", false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		relay(w, r, u, resp)
		return "", false
	}

	part, err := os.CreateTemp(p.dir, ".part-*")
	if err != nil {
		http.Error(w, "indexproxy: "+err.Error(), http.StatusInternalServerError)
		return "", false
	}
	defer os.Remove(part.Name()) // a no-op once renamed into place
	defer part.Close()

	var dst io.Writer = part
	if stream {
		copyHeaders(w, resp)
		immutable(w)
		w.WriteHeader(http.StatusOK)
		dst = io.MultiWriter(part, w)
	}
	n, err := io.Copy(dst, resp.Body)
	p.mu.Lock()
	p.stats.UpstreamBytes += n
	p.mu.Unlock()
	if err == nil {
		err = part.Close()
	}
	var file string
	if err == nil {
		file, err = p.commit(key, part.Name())
	}
	if err != nil {
		if stream {
			panic(http.ErrAbortHandler) // the client has a partial body already; cut it, so it cannot miss that
		}
		badGateway(w, u, "fetching the wheel: "+describe(err))
		return "", false
	}
	return file, true
}

// commit moves a completely fetched wheel into place, unless the proxy is closing (Close would miss it).
func (p *Proxy) commit(key, part string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return "", errors.New("proxy closed")
	}
	sum := sha256.Sum256([]byte(key))
	file := filepath.Join(p.dir, hex.EncodeToString(sum[:])+".whl")
	if err := os.Rename(part, file); err != nil {
		return "", err
	}
	p.cached[key] = file
	p.stats.WheelFetches++
	return file, nil
}

func (p *Proxy) cachedFile(key string) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	file, ok := p.cached[key]
	return file, ok
}

// lockFile takes the lock of one upstream file and returns its unlock.
func (p *Proxy) lockFile(key string) func() {
	p.mu.Lock()
	l := p.locks[key]
	if l == nil {
		l = &sync.Mutex{}
		p.locks[key] = l
	}
	p.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// serveCached answers with a wheel from Dir: whole, with a 200, whatever Range was asked.
func (p *Proxy) serveCached(w http.ResponseWriter, r *http.Request, file string) {
	f, err := os.Open(file)
	if err != nil {
		http.Error(w, "indexproxy: "+err.Error(), http.StatusInternalServerError)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		http.Error(w, "indexproxy: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(fi.Size(), 10))
	immutable(w)
	if r.Method == http.MethodHead {
		return
	}
	p.mu.Lock()
	p.stats.CacheHits++
	p.mu.Unlock()
	copyBody(w, f)
}

// readMetadata returns the METADATA of a wheel: the one <name>.dist-info/METADATA at the archive's top level.
func readMetadata(wheel string) ([]byte, error) {
	zr, err := zip.OpenReader(wheel)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) { // only read by name here, never extracted
		return nil, errors.New("not a zip archive")
	}
	defer zr.Close()
	var found *zip.File
	for _, f := range zr.File {
		dir, name, ok := strings.Cut(f.Name, "/")
		if !ok || name != "METADATA" || !strings.HasSuffix(dir, ".dist-info") {
			continue
		}
		if found != nil {
			return nil, errors.New("more than one .dist-info/METADATA")
		}
		found = f
	}
	if found == nil {
		return nil, errors.New("no .dist-info/METADATA")
	}
	rc, err := found.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxMetadata+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxMetadata {
		return nil, errors.New("METADATA too large")
	}
	return data, nil
}
