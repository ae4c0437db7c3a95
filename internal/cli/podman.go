package cli

// A podman context: the user's Podman service, its Docker-compatible API
// for the environments and images, and envd's managed builder as a
// container in it.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"envd.dev/envd/internal/builderctx"
	"envd.dev/envd/internal/docker"
	"envd.dev/envd/internal/podman"
	"envd.dev/envd/internal/runtime"
	"envd.dev/envd/internal/xdg"
)

// podmans holds this process's connection to each Podman service.
var podmans = struct {
	sync.Mutex
	m map[string]*podmanConn
}{m: map[string]*podmanConn{}}

type podmanConn struct {
	engine *podman.Engine
	dk     *docker.Client
}

// podmanFor connects to the Podman of context c, once per process.
func podmanFor(ctx context.Context, c builderctx.Context) (*podmanConn, error) {
	socket := ""
	if c.Podman != nil {
		socket = c.Podman.Socket
	}
	podmans.Lock()
	defer podmans.Unlock()
	if p := podmans.m[socket]; p != nil {
		return p, nil
	}
	e, err := podman.Find(ctx, socket)
	if err != nil {
		return nil, err
	}
	dk, err := e.Docker(ctx)
	if err != nil {
		return nil, err
	}
	p := &podmanConn{engine: e, dk: dk}
	podmans.m[socket] = p
	return p, nil
}

// runtime is the environments' runtime on this Podman.
func (p *podmanConn) runtime(stateRoot string) *runtime.Podman {
	return runtime.NewPodman(p.dk.API(), stateRoot, runtime.PodmanOptions{
		Rootless: p.engine.Rootless, HostNetwork: !p.engine.CanPublish(), CDIGPUs: podman.CDIGPUs(),
	})
}

// podmanMapsUser says whether a podman context's environments map the
// host user to the image's dev user (rootless Podman's keep-id), so that
// images are planned with the image's own dev UID. It is decided before
// Podman is asked (the build plan comes first): Podman is rootless for a
// user who is not root; up checks that it is.
func podmanMapsUser(c builderctx.Context) bool {
	return c.RuntimeKind() == builderctx.RuntimePodman && os.Geteuid() != 0
}

// podmanBuilderDir is the managed builder's state directory for Podman:
// not the one of the builder in Docker, whose socket it would take.
func podmanBuilderDir() string { return filepath.Join(xdg.DataDir(), "buildkit-podman") }

// notePodman says, after a podman context is made, which Podman answers
// and what to fix there; a context whose Podman does not answer yet is
// still made (the user may start it later).
func notePodman(ctx context.Context, s streams, c builderctx.Context) {
	socket := ""
	if c.Podman != nil {
		socket = c.Podman.Socket
	}
	e, err := podman.Find(ctx, socket)
	if err != nil {
		fmt.Fprintf(s.err, "envd: warning: %v\n", err)
		return
	}
	mode := "rootful"
	if e.Rootless {
		mode = "rootless"
	}
	net := "its ports are published on 127.0.0.1"
	if !e.CanPublish() {
		net = "it cannot publish ports here (slirp4netns cannot open /dev/net/tun), so environments share this machine's network and envd picks their ports"
	}
	fmt.Fprintf(s.out, "Podman %s (%s) answers on %s; %s\n", e.Version, mode, e.Socket, net)
	if note := e.StorageNote(); note != "" {
		fmt.Fprintf(s.err, "envd: warning: %s\n", note)
	}
}
