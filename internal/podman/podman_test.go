package podman

import (
	"context"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

func TestSockets(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		uid  int
		want []string
	}{
		{"a user's session", map[string]string{"XDG_RUNTIME_DIR": "/run/user/1234"}, 1234, []string{"/run/user/1234/podman/podman.sock"}},
		{"no session directory set", nil, 1234, []string{"/run/user/1234/podman/podman.sock"}},
		{"CONTAINER_HOST first", map[string]string{"CONTAINER_HOST": "unix:///tmp/p.sock", "XDG_RUNTIME_DIR": "/run/user/5"}, 5, []string{"/tmp/p.sock", "/run/user/5/podman/podman.sock"}},
		{"a remote CONTAINER_HOST is not a socket", map[string]string{"CONTAINER_HOST": "ssh://me@box/run/podman.sock"}, 5, []string{"/run/user/5/podman/podman.sock"}},
		{"root also has the system socket", nil, 0, []string{"/run/user/0/podman/podman.sock", "/run/podman/podman.sock"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Sockets(func(k string) string { return tt.env[k] }, tt.uid)
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("Sockets = %v, want %v", got, tt.want)
			}
		})
	}
}

// serve answers HTTP on a unix socket in a temporary directory.
func serve(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return sock
}

func TestFind(t *testing.T) {
	ctx := context.Background()
	podman := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v4.0.0/libpod/info" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(`{"host":{"security":{"rootless":true}},"store":{"graphDriverName":"vfs"},"version":{"Version":"4.3.1"}}`))
	})
	e, err := Find(ctx, podman)
	if err != nil {
		t.Fatal(err)
	}
	if e.Version != "4.3.1" || !e.Rootless || e.Storage != "vfs" || !strings.Contains(e.StorageNote(), `driver = "overlay"`) {
		t.Errorf("engine %+v, note %q", e, e.StorageNote())
	}

	// A Docker socket has no libpod API.
	dockerd := serve(t, http.NotFound)
	var notPodman *NotPodmanError
	if _, err := Find(ctx, dockerd); !errors.As(err, &notPodman) {
		t.Errorf("Find on a Docker socket: %v, want NotPodmanError", err)
	}

	// Nothing listens: say how to start the service, on the socket tried.
	missing := filepath.Join(t.TempDir(), "podman.sock")
	_, err = Find(ctx, missing)
	var notRunning *NotRunningError
	if !errors.As(err, &notRunning) || !strings.Contains(err.Error(), "podman system service --time=0 unix://"+missing) {
		t.Errorf("Find with nothing listening: %v", err)
	}
}

func TestPull(t *testing.T) {
	var query, auth string
	sock := serve(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v4.0.0/libpod/info":
			w.Write([]byte(`{"version":{"Version":"4.3.1"}}`))
		case "/v4.0.0/libpod/images/pull":
			query, auth = r.URL.RawQuery, r.Header.Get("X-Registry-Auth")
			if strings.Contains(query, "missing") {
				w.Write([]byte(`{"stream":"Trying to pull\n"}` + "\n" + `{"error":"manifest unknown"}` + "\n"))
				return
			}
			w.Write([]byte(`{"images":["sha256:abc"],"id":"abc"}` + "\n"))
		}
	})
	e, err := Find(context.Background(), sock)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ref, query, err string
	}{
		{"127.0.0.1:5000/envd/x@sha256:1", "tlsVerify=false", ""},
		{"localhost:5000/envd/x:latest", "tlsVerify=false", ""},
		{"registry.example.com/team/x:1", "", ""},
		{"127.0.0.1:5000/missing:1", "tlsVerify=false", "manifest unknown"},
	}
	for _, tt := range tests {
		err := e.Pull(context.Background(), tt.ref, "AUTH")
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Pull(%s) = %v, want %q", tt.ref, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Pull(%s): %v", tt.ref, err)
		}
		if got := strings.Contains(query, "tlsVerify=false"); got != (tt.query != "") {
			t.Errorf("Pull(%s) query %q: tlsVerify=false %v, want %v", tt.ref, query, got, tt.query != "")
		}
		if auth != "AUTH" {
			t.Errorf("Pull(%s) sent X-Registry-Auth %q", tt.ref, auth)
		}
	}
}
