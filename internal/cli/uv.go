package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"envd.dev/envd/internal/compile"
	"envd.dev/envd/internal/ir"
	"envd.dev/envd/internal/uvbinary"
	"envd.dev/envd/internal/xdg"
)

// defaultIndex is where pip and uv look when config.pip_index names none.
const defaultIndex = "https://pypi.org/simple/"

// uvFetchTimeout bounds the wait for the host's uv; the build then fetches
// uv itself, as it would without the host's.
const uvFetchTimeout = 90 * time.Second

// hostUV is uv's binary being fetched onto the host while the build starts:
// the resolve step, some seconds later, then need not wait for a pip in the
// image to fetch it.
type hostUV struct {
	cache  string // served to the solve as compile.LocalUV
	subdir string // below cache, holds uvbinary.BinaryPath once done is closed and err is nil
	done   chan struct{}
	err    error
}

// startHostUV fetches uv for the image's architecture (arch, as GOARCH
// names it) in the background when env installs Python packages; nil when
// it does not.
func startHostUV(ctx context.Context, env *ir.Environment, caPEM []byte, arch string) *hostUV {
	if !compile.UsesUV(env) {
		return nil
	}
	indexes := []string{defaultIndex}
	if idx := env.PipIndex; idx != nil && idx.URL != "" {
		indexes = []string{idx.URL}
	}
	if idx := env.PipIndex; idx != nil && idx.ExtraURL != "" {
		indexes = append(indexes, idx.ExtraURL)
	}
	trust := env.PipIndex != nil && env.PipIndex.Trust
	h := &hostUV{
		cache:  filepath.Join(xdg.CacheDir(), "uv"),
		subdir: uvbinary.Subdir(compile.UVVersion, arch),
		done:   make(chan struct{}),
	}
	// The solve session is set up before the fetch ends: the directory it
	// serves must exist by then.
	if err := os.MkdirAll(h.cache, 0o755); err != nil {
		return nil
	}
	go func() {
		defer close(h.done)
		ctx, cancel := context.WithTimeout(ctx, uvFetchTimeout)
		defer cancel()
		_, h.err = uvbinary.Ensure(ctx, indexClient(caPEM, trust), h.cache, compile.UVVersion, arch, indexes)
	}()
	return h
}

// wait returns the directory below cache that holds uv, or why there is none.
func (h *hostUV) wait(ctx context.Context) (string, error) {
	select {
	case <-h.done:
		if h.err != nil {
			return "", h.err
		}
		return h.subdir, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// indexClient trusts what build steps trust: the system's CAs plus the CA
// bundle, or any certificate for an index config.pip_index marks trusted
// (pip's --trusted-host; the wheel's sha256 is still checked).
func indexClient(caPEM []byte, trustAll bool) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = 20 * time.Second
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: trustAll} //nolint:gosec // pip's --trusted-host
	if len(caPEM) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		pool.AppendCertsFromPEM(caPEM)
		cfg.RootCAs = pool
	}
	tr.TLSClientConfig = cfg
	return &http.Client{Transport: tr}
}
