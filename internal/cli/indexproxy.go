package cli

import (
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"syscall"

	"envd.dev/envd/internal/compile"
	"envd.dev/envd/internal/indexproxy"
	"envd.dev/envd/internal/ir"
	"envd.dev/envd/internal/xdg"
)

// indexProxy is envd's caching proxy in front of config.pip_index's URLs for
// one build (package indexproxy): with it no wheel is fetched twice, even
// from an index without PEP 658 metadata. It serves the builder's steps on
// 127.0.0.1, so only a builder on this machine gets it.
type indexProxy struct {
	*indexproxy.Proxy
	secrets map[string][]byte // compile.IndexProxySecret and compile.ExtraIndexProxySecret
	note    string            // why it is not on its usual port, or ""
	dir     string
}

// Close stops the proxy and removes the wheels it kept.
func (p *indexProxy) Close() {
	p.Proxy.Close()
	os.RemoveAll(p.dir)
}

// startIndexProxy starts the proxy for idx, or returns nil when the build
// names no index of its own (PyPI has metadata).
func startIndexProxy(idx *ir.PipIndex, caPEM []byte) (*indexProxy, error) {
	if idx == nil || (idx.URL == "" && idx.ExtraURL == "") {
		return nil, nil
	}
	var ups []indexproxy.Upstream
	var secretIDs []string
	for _, u := range []struct{ url, secret string }{{idx.URL, compile.IndexProxySecret}, {idx.ExtraURL, compile.ExtraIndexProxySecret}} {
		if u.url != "" {
			ups = append(ups, indexproxy.Upstream{URL: u.url, Insecure: idx.Trust})
			secretIDs = append(secretIDs, u.secret)
		}
	}
	base := filepath.Join(xdg.DataDir(), "index-proxy")
	if err := os.MkdirAll(base, 0o700); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(base, "build-")
	if err != nil {
		return nil, err
	}
	o := indexproxy.Options{Upstreams: ups, CAPEM: caPEM, Dir: dir, Addr: indexProxyAddr(ups)}
	ip := &indexProxy{dir: dir}
	if ip.Proxy, err = indexproxy.Start(o); errors.Is(err, syscall.EADDRINUSE) {
		ip.note = fmt.Sprintf("the package index proxy's port (%s) is taken, perhaps by another build: this build's uv cache entries are its own", o.Addr)
		o.Addr = "127.0.0.1:0"
		ip.Proxy, err = indexproxy.Start(o)
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start the package index proxy: %w", err)
	}
	ip.secrets = map[string][]byte{}
	for i, id := range secretIDs {
		ip.secrets[id] = []byte(ip.IndexURL(i))
	}
	return ip, nil
}

// indexProxyAddr is the proxy's usual address for these indexes and this
// user: the same at every build, because uv keys its cache (in the
// builder's cache mount) by the index URL it was given. 20000-29999 is below
// Linux's ephemeral ports.
func indexProxyAddr(ups []indexproxy.Upstream) string {
	h := fnv.New32a()
	fmt.Fprintf(h, "uid %d\n", os.Getuid())
	for _, u := range ups {
		fmt.Fprintf(h, "%s\n", u.URL)
	}
	return fmt.Sprintf("127.0.0.1:%d", 20000+h.Sum32()%10000)
}
