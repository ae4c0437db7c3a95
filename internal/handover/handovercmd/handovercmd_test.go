package handovercmd

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"envd.dev/envd/internal/handover"
)

const secret = "0123456789abcdef0123456789abcdef"

// session runs the command's logic on pipes, as envd would through an exec.
type session struct {
	in   *io.PipeWriter
	out  *bufio.Reader
	done chan error
}

func start(t *testing.T, dir string) *session {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	s := &session{in: inW, out: bufio.NewReader(outR), done: make(chan error, 1)}
	go func() {
		err := run(inR, outW, dir)
		outW.CloseWithError(io.EOF)
		s.done <- err
	}()
	t.Cleanup(func() { inW.Close() })
	return s
}

func (s *session) send(t *testing.T, line string) string {
	t.Helper()
	if _, err := io.WriteString(s.in, line+"\n"); err != nil {
		t.Fatalf("write %q: %v", line, err)
	}
	got, err := s.out.ReadString('\n')
	if err != nil {
		t.Fatalf("after %q: %v", line, err)
	}
	return strings.TrimSuffix(got, "\n")
}

func TestProtocol(t *testing.T) {
	dir := t.TempDir()
	s := start(t, dir)
	host := s.send(t, secret)
	if !strings.HasPrefix(host, "127.0.0.1:") {
		t.Fatalf("first line = %q, want 127.0.0.1:PORT", host)
	}

	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(host+"/envd/test:latest", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	// Without the secret: 401, so a client retries with it.
	err = remote.Write(ref, img)
	var terr *transport.Error
	if !errors.As(err, &terr) || terr.StatusCode != http.StatusUnauthorized {
		t.Fatalf("push without the secret: %v, want 401", err)
	}
	auth := remote.WithAuth(&authn.Basic{Username: handover.User, Password: secret})
	if err := remote.Write(ref, img, auth); err != nil {
		t.Fatalf("push with the secret: %v", err)
	}
	dgst, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct{ line, want string }{
		{"keep test:dev envd/test " + dgst.String(), "ok"},
		{"keep test:dev envd/test sha256:" + strings.Repeat("0", 64), "error: manifest envd/test:sha256:"},
		{"keep test:dev", "error: unknown request"},
		{"forget test:dev", "error: unknown request"},
	} {
		if got := s.send(t, tc.line); !strings.HasPrefix(got, tc.want) {
			t.Errorf("%q answered %q, want %q...", tc.line, got, tc.want)
		}
	}
	// Keep recorded the image's blobs in the cache index.
	if b, err := os.ReadFile(filepath.Join(dir, "images.json")); err != nil || !strings.Contains(string(b), `"test:dev"`) {
		t.Errorf("images.json: %v\n%s", err, b)
	}

	// The end of stdin stops the registry, and the command exits 0.
	s.in.Close()
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("run after EOF: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after the end of stdin")
	}
	if _, err := http.Get("http://" + host + "/v2/"); err == nil {
		t.Error("the registry still answers after the end of stdin")
	}
}

func TestBadSecret(t *testing.T) {
	for _, tc := range []struct{ name, stdin string }{
		{"empty stdin", ""},
		{"empty line", "\n"},
		{"too short", "abc\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			err := run(strings.NewReader(tc.stdin), &out, t.TempDir())
			if err == nil || !strings.Contains(err.Error(), "secret") {
				t.Errorf("run = %v, want an error about the secret", err)
			}
			if out.Len() != 0 {
				t.Errorf("printed %q before failing", out.String())
			}
		})
	}
}
