// Package handover moves a built image from BuildKit into Docker through a
// registry that envd runs on 127.0.0.1 for the length of one transfer. BuildKit
// pushes only the blobs the registry lacks and Docker pulls only the layers
// it lacks, so a rebuild that changed one layer moves one layer — where a
// docker-load tarball re-sends the whole image every time.
//
// Every local user can reach 127.0.0.1, so the registry answers only
// requests that carry a random secret made for this build, known to envd,
// to BuildKit (through the build session) and to Docker (with the pull).
package handover

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Registry is a registry on 127.0.0.1 whose blobs live in a directory, so
// they outlive the build; manifests live in memory.
type Registry struct {
	dir    string
	inUse  func() // releases the shared in-use lock: GC spares new blobs
	ln     net.Listener
	srv    *http.Server
	secret string
	serve  sync.Once
	closed sync.Once
}

// User is the user name that goes with the registry's secret.
const User = "envd"

// Start binds a registry on 127.0.0.1 with blobs kept under dir and a
// fresh secret. It answers nothing until Serve: the port is known early (it
// is in the image name the build pushes to), the registry is up only for the
// push and the pull.
func Start(dir string) (*Registry, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	return Listen(dir, "127.0.0.1:0", hex.EncodeToString(key))
}

// Listen is Start on addr with a secret the caller made: envd-handover,
// in a builder on another machine, is told it by the envd that runs it.
func Listen(dir, addr, secret string) (*Registry, error) {
	if secret == "" {
		return nil, errors.New("the hand-over registry needs a secret: every local user can reach it")
	}
	// Only envd's user reads the blobs: they are the images being built.
	if err := os.MkdirAll(filepath.Join(dir, "sha256"), 0o700); err != nil {
		return nil, err
	}
	os.Chmod(dir, 0o700) // a cache made by an older envd was 0755
	inUse, err := flock(filepath.Join(dir, "inuse.lock"), lockShared)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		inUse()
		return nil, err
	}
	r := &Registry{dir: dir, ln: ln, secret: secret, inUse: inUse}
	r.srv = &http.Server{
		Handler:           r.authorize(registry.New(registry.WithBlobHandler(blobs{dir: dir}), registry.Logger(discardLogger()))),
		ReadHeaderTimeout: 30 * time.Second,
	}
	return r, nil
}

// Serve starts answering requests (those with the secret).
func (r *Registry) Serve() {
	r.serve.Do(func() { go r.srv.Serve(r.ln) })
}

// Host is the registry's host:port, for image references.
func (r *Registry) Host() string { return r.ln.Addr().String() }

// Secret is the password (for User) every request must carry.
func (r *Registry) Secret() string { return r.secret }

// authorize refuses every request without the build's secret, in the
// form the registry protocol expects, so that clients retry with it.
func (r *Registry) authorize(next http.Handler) http.Handler {
	want := []byte(User + ":" + r.secret)
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		u, p, ok := req.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(u+":"+p), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="envd hand-over"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"this registry serves only the envd build that started it"}]}`)
			return
		}
		next.ServeHTTP(w, req)
	})
}

// Close stops serving at once; the blobs stay. It is called once Docker
// has the image (or the build failed), so no transfer is cut short; a
// graceful Shutdown would wait up to 5 s for a connection a client opened
// ahead of need and never used.
func (r *Registry) Close() error {
	var err error
	r.closed.Do(func() {
		err = r.srv.Close()
		r.ln.Close() // not yet served: the server does not know it
		r.inUse()
	})
	return err
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
