package cli

// Which context a command uses (--context, else the current one), and the
// runtime and use-case manager that context names.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"envd.dev/envd/internal/builderctx"
	"envd.dev/envd/internal/docker"
	"envd.dev/envd/internal/envs"
	"envd.dev/envd/internal/kube"
	"envd.dev/envd/internal/registry"
	"envd.dev/envd/internal/runtime"
	"envd.dev/envd/internal/xdg"
)

// contextFlag is the global --context: use that context for this command.
var contextFlag string

// selectedContext is --context's context, else the current one.
func selectedContext() (builderctx.Context, error) {
	store, err := contextStore()
	if err != nil {
		return builderctx.Context{}, err
	}
	if contextFlag != "" {
		return store.Get(contextFlag)
	}
	return store.Current()
}

// session is what every environment command needs: the selected context,
// its runtime and the use cases on it. dk is set for the Docker runtime.
type session struct {
	ctx builderctx.Context
	rt  runtime.Runtime
	m   *envs.Manager
	dk  *docker.Client
	// kube is the runtime again when it is a cluster's.
	kube *kube.Envs
	// server is the Docker of an ssh context's server (stays open).
	server *docker.Client
	// podman is the runtime again when it is the user's Podman.
	podman *runtime.Podman
	// images is the engine holding the images of a local runtime (Docker
	// or Podman), whose images destroy removes; nil elsewhere.
	images *docker.Client
}

func openSession(ctx context.Context, st streams) (*session, error) {
	c, err := selectedContext()
	if err != nil {
		return nil, err
	}
	host, err := hostPaths()
	if err != nil {
		return nil, err
	}
	s := &session{ctx: c}
	switch c.RuntimeKind() {
	case builderctx.RuntimeKubernetes:
		r, err := kube.Connect(kube.Options{Kubeconfig: c.Kube.Kubeconfig, Context: c.Kube.Context, Namespace: c.Kube.Namespace})
		if err != nil {
			return nil, err
		}
		s.kube = &kube.Envs{Runtime: r}
		s.rt = s.kube
	case builderctx.RuntimeSSH:
		dk, h, err := serverDocker(ctx, c)
		if err != nil {
			return nil, err
		}
		s.rt = runtime.NewRemoteDocker(dk.API(), h.String(), h.DialTCP)
		s.server = dk
	case builderctx.RuntimePodman:
		p, err := podmanFor(ctx, c)
		if err != nil {
			return nil, err
		}
		s.podman = p.runtime(filepath.Join(host.StateRoot, "podman"))
		s.rt, s.images = s.podman, p.dk
	default:
		if s.dk, err = docker.Connect(ctx); err != nil {
			return nil, err
		}
		s.rt = runtime.NewDocker(s.dk.API(), host.StateRoot)
		s.images = s.dk
	}
	s.m = &envs.Manager{Runtime: s.rt, Host: host, Log: st.err}
	if c.Name != builderctx.Default {
		s.m.Context = c.Name
	}
	return s, nil
}

// usePullAuth makes the user's Docker login to the context's registry the
// pods' pull secret. Only up needs it: a credential helper may be slow, and
// ssh's ProxyCommand runs envd at every connection.
func (s *session) usePullAuth() error {
	auth, source, err := pullAuth(s.ctx.Kube.Registry)
	if err != nil || auth == nil {
		return err
	}
	s.kube.PullAuth, s.kube.PullAuthSource = auth, source
	return nil
}

// pullAuth is the user's Docker login for the registry of reg (REGISTRY[/PREFIX])
// as a pull secret's content, and where the login came from; nil when
// there is none.
func pullAuth(reg string) ([]byte, string, error) {
	host, _, _ := strings.Cut(reg, "/")
	cred, found, err := registry.CredentialFor(host)
	if err != nil {
		return nil, "", fmt.Errorf("your Docker login for %s: %w", host, err)
	}
	if !found {
		return nil, "", nil
	}
	auth, err := registry.DockerConfigJSON(host, cred)
	return auth, cred.Source, err
}

func (s *session) Close() {
	if s.dk != nil {
		s.dk.Close()
	}
}

// hostPaths are where envd keeps environments' files on this machine.
func hostPaths() (envs.Host, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return envs.Host{}, err
	}
	return envs.Host{
		StateRoot:  filepath.Join(xdg.DataDir(), "envs"),
		SSHConfig:  filepath.Join(home, ".ssh", "config"),
		KnownHosts: filepath.Join(xdg.ConfigDir(), "known_hosts"),
		KeyDir:     xdg.ConfigDir(),
		Envd:       envdPath(),
	}, nil
}

// loopbackRegistry: REGISTRY[/PREFIX] is on this machine, where
// registries speak plain http.
func loopbackRegistry(reg string) bool { return registry.OnLoopback(reg) }
