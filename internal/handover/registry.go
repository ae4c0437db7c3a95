// Package handover moves a built image from BuildKit into Docker through a
// registry that envd runs on 127.0.0.1 for the length of one build. BuildKit
// pushes only the blobs the registry lacks and Docker pulls only the layers
// it lacks, so a rebuild that changed one layer moves one layer — where a
// docker-load tarball re-sends the whole image every time.
package handover

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Registry is a registry on 127.0.0.1 whose blobs live in a directory, so
// they outlive the build; manifests live in memory.
type Registry struct {
	dir string
	ln  net.Listener
	srv *http.Server
}

// Start serves a registry with blobs kept under dir.
func Start(dir string) (*Registry, error) {
	if err := os.MkdirAll(filepath.Join(dir, "sha256"), 0o755); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &Registry{dir: dir, ln: ln}
	r.srv = &http.Server{
		Handler:           registry.New(registry.WithBlobHandler(blobs{dir: dir}), registry.Logger(discardLogger())),
		ReadHeaderTimeout: 30 * time.Second,
	}
	go r.srv.Serve(ln)
	return r, nil
}

// Host is the registry's host:port, for image references.
func (r *Registry) Host() string { return r.ln.Addr().String() }

// Close stops serving at once; the blobs stay. It is called once Docker
// has the image (or the build failed), so no transfer is cut short; a
// graceful Shutdown would wait up to 5 s for a connection a client opened
// ahead of need and never used.
func (r *Registry) Close() error {
	return r.srv.Close()
}

// blobs stores blobs as files named by digest. Unlike the library's disk
// handler it does not re-hash a blob on every HEAD (a push asks about every
// layer), and it checks the digest once, when the blob arrives.
type blobs struct{ dir string }

func (b blobs) path(h v1.Hash) string { return filepath.Join(b.dir, h.Algorithm, h.Hex) }

func (b blobs) Stat(_ context.Context, _ string, h v1.Hash) (int64, error) {
	st, err := os.Stat(b.path(h))
	if errors.Is(err, os.ErrNotExist) {
		return 0, registry.ErrNotFound
	}
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

func (b blobs) Get(_ context.Context, _ string, h v1.Hash) (io.ReadCloser, error) {
	f, err := os.Open(b.path(h))
	if errors.Is(err, os.ErrNotExist) {
		return nil, registry.ErrNotFound
	}
	return f, err
}

func (b blobs) Put(_ context.Context, _ string, h v1.Hash, rc io.ReadCloser) error {
	if h.Algorithm != "sha256" {
		return fmt.Errorf("unsupported digest algorithm %s", h.Algorithm)
	}
	tmp, err := os.CreateTemp(filepath.Join(b.dir, "sha256"), ".upload-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	sum := sha256.New()
	_, err = io.Copy(io.MultiWriter(tmp, sum), rc)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != h.Hex {
		return fmt.Errorf("blob %s arrived with digest sha256:%s", h, got)
	}
	return os.Rename(tmp.Name(), b.path(h))
}

func (b blobs) Delete(_ context.Context, _ string, h v1.Hash) error {
	return os.Remove(b.path(h))
}
