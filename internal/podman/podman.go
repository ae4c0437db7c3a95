// Package podman finds the user's Podman and says what it can do. envd
// talks to Podman through its Docker-compatible API (package docker) and
// uses Podman's own (libpod) API only where the compatible one falls
// short: its pull ignores that a registry on 127.0.0.1 speaks plain http.
package podman

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"envd.dev/envd/internal/docker"
	"envd.dev/envd/internal/registry"
)

// Engine is a Podman service that answered on Socket.
type Engine struct {
	Socket   string
	Version  string
	Rootless bool
	// Storage is its storage driver ("overlay", "vfs").
	Storage string
	http    *http.Client
}

// Sockets are where a Podman service listens, in the order envd tries
// them: $CONTAINER_HOST (as podman --remote uses it), the user's socket in
// $XDG_RUNTIME_DIR (or /run/user/UID), and for root the system one.
func Sockets(getenv func(string) string, uid int) []string {
	var out []string
	if h := getenv("CONTAINER_HOST"); strings.HasPrefix(h, "unix://") {
		out = append(out, strings.TrimPrefix(h, "unix://"))
	}
	run := getenv("XDG_RUNTIME_DIR")
	if run == "" {
		run = "/run/user/" + strconv.Itoa(uid)
	}
	out = append(out, filepath.Join(run, "podman", "podman.sock"))
	if uid == 0 {
		out = append(out, "/run/podman/podman.sock")
	}
	return out
}

// NotRunningError: no Podman service answered on any of the sockets.
type NotRunningError struct {
	Tried []string
	Err   error // from the last socket tried
}

func (e *NotRunningError) Error() string {
	return fmt.Sprintf("no Podman service answers on %s: %v\n"+
		"  hint: start one and leave it running: podman system service --time=0 unix://%s &\n"+
		"        (where systemd runs your session: systemctl --user enable --now podman.socket)",
		strings.Join(e.Tried, " or "), e.Err, e.Tried[len(e.Tried)-1])
}

// Find connects to the Podman service on socket, or, when socket is "",
// on the first of Sockets that answers.
func Find(ctx context.Context, socket string) (*Engine, error) {
	tried := []string{socket}
	if socket == "" {
		tried = Sockets(os.Getenv, os.Getuid())
	}
	var last error
	for _, s := range tried {
		e, err := open(ctx, s)
		if err == nil {
			return e, nil
		}
		var notPodman *NotPodmanError
		if errors.As(err, &notPodman) {
			return nil, err
		}
		last = err
	}
	return nil, &NotRunningError{Tried: tried, Err: last}
}

// NotPodmanError: what answered on the socket is not Podman.
type NotPodmanError struct{ Socket string }

func (e *NotPodmanError) Error() string {
	return fmt.Sprintf("%s answers, but not as Podman (a Docker socket?)\n  hint: use the local Docker with a context of --runtime docker, or give Podman's socket with --podman-socket", e.Socket)
}

func open(ctx context.Context, socket string) (*Engine, error) {
	e := &Engine{Socket: socket, http: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}}}
	var info struct {
		Host struct {
			Security struct {
				Rootless bool `json:"rootless"`
			} `json:"security"`
		} `json:"host"`
		Store struct {
			GraphDriverName string `json:"graphDriverName"`
		} `json:"store"`
		Version struct {
			Version string `json:"Version"`
		} `json:"version"`
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	resp, err := e.do(ctx, http.MethodGet, "/v4.0.0/libpod/info", nil, "")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, &NotPodmanError{Socket: socket}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("podman info: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil || info.Version.Version == "" {
		return nil, &NotPodmanError{Socket: socket}
	}
	e.Version, e.Rootless, e.Storage = info.Version.Version, info.Host.Security.Rootless, info.Store.GraphDriverName
	return e, nil
}

func (e *Engine) do(ctx context.Context, method, path string, query url.Values, auth string) (*http.Response, error) {
	u := "http://podman" + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, err
	}
	if auth != "" {
		req.Header.Set("X-Registry-Auth", auth)
	}
	return e.http.Do(req)
}

// Docker is a client of the engine's Docker-compatible API, whose pulls
// go through Podman's own.
func (e *Engine) Docker(ctx context.Context) (*docker.Client, error) {
	return docker.ConnectHost(ctx, "unix://"+e.Socket, e)
}

// Pull pulls ref (auth as in X-Registry-Auth). A registry on this
// machine's loopback is spoken to in plain http, as Docker does.
func (e *Engine) Pull(ctx context.Context, ref, auth string) error {
	q := url.Values{"reference": {ref}, "quiet": {"true"}}
	if registry.OnLoopback(ref) {
		q.Set("tlsVerify", "false")
	}
	resp, err := e.do(ctx, http.MethodPost, "/v4.0.0/libpod/images/pull", q, auth)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("podman pull %s: %s: %s", ref, resp.Status, strings.TrimSpace(string(b)))
	}
	// Failures come inside the stream.
	dec := json.NewDecoder(resp.Body)
	for {
		var msg struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("podman pull %s: reading the response: %w", ref, err)
		}
		if msg.Error != "" {
			return fmt.Errorf("podman pull %s: %s", ref, msg.Error)
		}
	}
}

// CanPublish says whether the engine can publish container ports: rootful
// Podman can, rootless Podman only when slirp4netns can open /dev/net/tun
// (some machines give it to root only). Otherwise containers share the
// host's network, and envd picks their ports.
func (e *Engine) CanPublish() bool {
	if !e.Rootless {
		return true
	}
	f, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// StorageNote warns of a storage driver that makes envd slow or fail.
func (e *Engine) StorageNote() string {
	if e.Storage != "vfs" {
		return ""
	}
	return "Podman uses the vfs storage driver here: every container is a full copy of its image (slow), and images whose / is not world-readable fail under keep-id\n" +
		"  hint: use overlay: put [storage] driver = \"overlay\" in ~/.config/containers/storage.conf, then podman system reset"
}

// CDIGPUs says whether Podman can give containers NVIDIA GPUs: a CDI
// specification for them exists (nvidia-ctk cdi generate writes one).
func CDIGPUs() bool {
	for _, dir := range []string{"/etc/cdi", "/var/run/cdi"} {
		matches, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
		more, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		for _, m := range append(matches, more...) {
			if b, err := os.ReadFile(m); err == nil && strings.Contains(string(b), "nvidia.com/gpu") {
				return true
			}
		}
	}
	return false
}
