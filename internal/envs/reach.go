package envs

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pkg/sftp"

	"envd.dev/envd/internal/contract"
	"envd.dev/envd/internal/forward"
	"envd.dev/envd/internal/projsync"
	"envd.dev/envd/internal/runtime"
	"envd.dev/envd/internal/sshclient"
)

// Forwards are the service ports (Jupyter, runtime.expose) of an
// environment whose runtime publishes none: envd forwards them to
// 127.0.0.1 on this machine, on the host_port asked for, else a free one.
func Forwards(spec runtime.Spec, env *runtime.Env) []forward.Forward {
	var fs []forward.Forward
	for _, p := range spec.Ports {
		if p.ContainerPort == contract.SSHPort {
			continue // ssh goes through envd ssh --stdio
		}
		if published := env.Port(p.ContainerPort); published != nil && published.HostPort != 0 {
			continue
		}
		fs = append(fs, forward.Forward{Name: p.Name, RemotePort: p.ContainerPort, LocalAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(p.HostPort))})
	}
	return fs
}

// Dialer is how forwards reach the environment's ports.
func (m *Manager) Dialer(name string) forward.DialFunc {
	return func(ctx context.Context, port int) (net.Conn, error) { return m.Runtime.Dial(ctx, name, port) }
}

func (m *Manager) forwarderState(name string) string {
	return filepath.Join(m.StateDir(name), "forward.json")
}

// StartForwarder runs `envd [--context C] forward NAME --port ...` in the
// background (envd up -d) and returns what it bound; down stops it.
func (m *Manager) StartForwarder(name string, fs []forward.Forward) (forward.State, error) {
	if len(fs) == 0 {
		return forward.State{}, nil
	}
	m.StopForwarder(name) // one per environment
	var args []string
	if m.Context != "" {
		args = append(args, "--context", m.Context)
	}
	args = append(args, "forward", name)
	for _, f := range fs {
		args = append(args, "--port", portFlag(f))
	}
	return forward.StartDetached(m.Host.Envd, args, m.forwarderState(name), filepath.Join(m.StateDir(name), "forward.log"), 15*time.Second)
}

// RecordForwarder is what the background forwarder calls once it listens.
func (m *Manager) RecordForwarder(name string, st forward.State) error {
	return forward.WriteState(m.forwarderState(name), st)
}

// StopForwarder stops the environment's background forwarder, if any.
func (m *Manager) StopForwarder(name string) error {
	return forward.Stop(m.forwarderState(name), m.Host.Envd)
}

// Forwarded is what the running background forwarder of name forwards.
func (m *Manager) Forwarded(name string) []forward.Forward {
	st, ok := forward.Running(m.forwarderState(name), m.Host.Envd)
	if !ok {
		return nil
	}
	return st.Forwards
}

func portFlag(f forward.Forward) string {
	return fmt.Sprintf("%s=%d:%s", f.Name, f.RemotePort, f.LocalAddr)
}

// ParsePortFlag reads a --port NAME=REMOTE:HOST:PORT of `envd forward`.
func ParsePortFlag(v string) (forward.Forward, error) {
	name, rest, ok := strings.Cut(v, "=")
	remote, local, ok2 := strings.Cut(rest, ":")
	port, err := strconv.Atoi(remote)
	if !ok || !ok2 || err != nil {
		return forward.Forward{}, fmt.Errorf("--port %q: want NAME=PORT:LOCALHOST:LOCALPORT", v)
	}
	return forward.Forward{Name: name, RemotePort: port, LocalAddr: local}, nil
}

// SyncResult says what a sync did.
type SyncResult struct {
	Shared bool // the runtime shares the directory: nothing to copy
	Stats  projsync.Stats
	From   string
	To     string
}

// Sync copies the project (or the part of it at rel) between this machine
// and the environment: toEnv pushes local changes in, else it pulls the
// environment's out. Only what differs moves; .envdignore is honoured.
func (m *Manager) Sync(ctx context.Context, name, rel string, toEnv bool) (*SyncResult, error) {
	if m.Runtime.Project() == runtime.ProjectShared {
		return &SyncResult{Shared: true}, nil
	}
	env, err := m.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	local, inside := env.Labels[contract.LabelProjectDir], env.Labels[contract.LabelProjectPath]
	if local == "" || inside == "" {
		return nil, fmt.Errorf("%s does not say where its project is\n  hint: envd up --force recreates it", name)
	}
	if rel != "" {
		clean := filepath.Clean(rel)
		if filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
			return nil, fmt.Errorf("%s: give a path inside the project, relative to %s", rel, local)
		}
		local, inside = filepath.Join(local, clean), inside+"/"+filepath.ToSlash(clean)
	}
	ign, err := projsync.LoadIgnore(env.Labels[contract.LabelProjectDir])
	if err != nil {
		return nil, err
	}
	t, err := m.Target(ctx, name)
	if err != nil {
		return nil, err
	}
	c, err := sshclient.Dial(ctx, t)
	if err != nil {
		return nil, fmt.Errorf("ssh to %s: %w", name, err)
	}
	defer c.Close()
	sc, err := sftp.NewClient(c)
	if err != nil {
		return nil, err
	}
	defer sc.Close()
	res := &SyncResult{From: local, To: name + ":" + inside}
	if toEnv {
		res.Stats, err = projsync.Push(sc, local, inside, ign)
	} else {
		res.From, res.To = res.To, res.From
		res.Stats, err = projsync.Pull(sc, inside, local, ign)
	}
	return res, err
}
