package cli

// An ssh context's server: its Docker, reached with the user's OpenSSH
// (`ssh HOST docker system dial-stdio`, as DOCKER_HOST=ssh:// does), and
// envd's managed builder running there as a container, with the
// hand-over registry inside it, so that images are built and handed over
// on the server and never cross the network.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"sync"

	"envd.dev/envd/internal/builderctx"
	"envd.dev/envd/internal/buildkitd"
	"envd.dev/envd/internal/docker"
	"envd.dev/envd/internal/handover"
	"envd.dev/envd/internal/sshhost"
)

// servers holds this process's connection to each server's Docker: the
// builder's dialer and the hand-over use it for as long as envd runs.
var servers = struct {
	sync.Mutex
	m map[string]*docker.Client
}{m: map[string]*docker.Client{}}

// serverHost is the server of an ssh context.
func serverHost(c builderctx.Context) (sshhost.Host, error) {
	if c.SSH == nil {
		return sshhost.Host{}, fmt.Errorf("context %s has no server: create it again with --runtime ssh://USER@HOST", c.Name)
	}
	return sshhost.Parse(c.SSH.Host)
}

// serverDocker connects to the Docker of c's server, once per process.
func serverDocker(ctx context.Context, c builderctx.Context) (*docker.Client, sshhost.Host, error) {
	h, err := serverHost(c)
	if err != nil {
		return nil, h, err
	}
	servers.Lock()
	defer servers.Unlock()
	if dk := servers.m[h.String()]; dk != nil {
		return dk, h, nil
	}
	dk, err := docker.ConnectVia(ctx, h.String(), func(ctx context.Context) (net.Conn, error) {
		return h.DialStdio(ctx, "docker", "system", "dial-stdio")
	})
	if err != nil {
		// The API's error hides what ssh or docker said there; the
		// docker CLI on the server says it, and why.
		if _, why := h.Run(ctx, "docker", "version", "--format", "{{.Server.Version}}"); why != nil {
			return nil, h, fmt.Errorf("cannot reach Docker on %s: %w", h, why)
		}
		return nil, h, err
	}
	servers.m[h.String()] = dk
	return dk, h, nil
}

// dockerFor is the Docker that images of context c go into: the server's
// for an ssh context, else this machine's. Close it with closeDocker.
func dockerFor(ctx context.Context, c builderctx.Context) (*docker.Client, error) {
	switch c.RuntimeKind() {
	case builderctx.RuntimeSSH:
		dk, _, err := serverDocker(ctx, c)
		return dk, err
	case builderctx.RuntimePodman:
		p, err := podmanFor(ctx, c)
		if err != nil {
			return nil, err
		}
		return p.dk, nil
	}
	return docker.Connect(ctx)
}

// closeDocker closes a client of dockerFor; a server's or Podman's stays
// open for the rest of the process.
func closeDocker(c builderctx.Context, dk *docker.Client) {
	if k := c.RuntimeKind(); k != builderctx.RuntimeSSH && k != builderctx.RuntimePodman {
		dk.Close()
	}
}

// serverBuilderName is the builder container (and cache volume) on the
// server: one per server address, so every machine of the user's that
// builds there shares its cache.
func serverBuilderName(h sshhost.Host) string {
	sum := sha256.Sum256([]byte(h.String()))
	return "envd-buildkitd-" + hex.EncodeToString(sum[:5])
}

// serverBuilderOptions configures the managed builder on c's server.
func serverBuilderOptions(ctx context.Context, c builderctx.Context, o buildkitd.Options) (buildkitd.Options, error) {
	dk, h, err := serverDocker(ctx, c)
	if err != nil {
		return o, err
	}
	o.Container, o.Remote, o.ContainerName = dk, true, serverBuilderName(h)
	return o, nil
}

// planServerHandover hands the image over on the server, through a
// registry that runs in the builder container there for this build.
func planServerHandover(ctx context.Context, via string, o buildkitd.Options, tag string) (*handoverPlan, error) {
	switch via {
	case "tarball":
		return nil, nil
	case "auto", "registry":
	default:
		return nil, usageError{fmt.Errorf("--load-via %q: use auto, registry or tarball", via)}
	}
	reg, err := buildkitd.StartHandover(ctx, o.Container, buildkitd.ContainerName(o))
	if err != nil {
		return nil, fmt.Errorf("starting the hand-over registry in the builder on the server: %w\n  hint: --load-via tarball avoids it (the image then goes through this machine)", err)
	}
	return newHandoverPlan(serverHandover{reg}, tag), nil
}

// serverHandover is the server's hand-over registry as the plan uses it.
type serverHandover struct{ *buildkitd.RemoteHandover }

// Serve: it serves from the start, to requests with its secret.
func (serverHandover) Serve() {}

// Keep bounds the server's hand-over cache by size: whether the server's
// Docker still has an image is not asked.
func (h serverHandover) Keep(image, repo, ref string, _ handover.LiveFunc) error {
	return h.RemoteHandover.Keep(image, repo, ref)
}
