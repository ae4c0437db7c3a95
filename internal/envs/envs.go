// Package envs holds envd's use cases on environments — up (build, deliver,
// start, wait, reach), down, destroy, sync and the way in for ssh — in terms
// of a runtime.Runtime given as a value, so that each runs the same on
// Docker, Kubernetes or a fake in a unit test. The CLI parses flags, plans
// the build and prints; what happens to an environment happens here.
package envs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/crypto/ssh"

	"envd.dev/envd/internal/contract"
	"envd.dev/envd/internal/envlock"
	"envd.dev/envd/internal/runtime"
	"envd.dev/envd/internal/sshclient"
	"envd.dev/envd/internal/sshconfig"
)

// Host is what envd keeps on this machine about environments.
type Host struct {
	// StateRoot holds one directory per environment (its host key, and for
	// Docker the files mounted at contract.RunDir) and their lock files.
	StateRoot  string
	SSHConfig  string // the user's ssh config, where envd keeps one block per environment
	KnownHosts string // envd's own known_hosts, with each environment's pinned host key
	KeyDir     string // holds the user's key for environments
	// Envd is this binary, for the ssh entries' ProxyCommand ("" none).
	Envd string
}

// Manager runs the use cases against one runtime.
type Manager struct {
	Runtime runtime.Runtime
	Host    Host
	// Context names the envd context the runtime belongs to; "" the default.
	// It goes into ssh entries so they keep working after `context use`.
	Context string
	// Log receives progress lines ("envd: ..."); nil discards them.
	Log io.Writer
	// LockWait bounds how long to wait for another envd on the same name.
	LockWait time.Duration
}

func (m *Manager) logf(format string, args ...any) {
	if m.Log != nil {
		fmt.Fprintf(m.Log, "envd: "+format+"\n", args...)
	}
}

// StateDir is where envd keeps an environment's files on this machine.
func (m *Manager) StateDir(name string) string { return filepath.Join(m.Host.StateRoot, name) }

// lock takes the environment's lock; action ("starting", "removing") is
// for whoever waits on it.
func (m *Manager) lock(ctx context.Context, name, action string) (*envlock.Lock, error) {
	wait := m.LockWait
	if wait == 0 {
		wait = 10 * time.Minute // the holder may be building
	}
	path := filepath.Join(m.Host.StateRoot, "."+name+".lock") // names never start with '.'
	l, err := envlock.Acquire(ctx, path, action, wait, func(h envlock.Holder) {
		m.logf("another envd (pid %d) is %s %s; waiting for it (up to %s)", h.PID, h.Action, name, wait)
	})
	var busy *envlock.BusyError
	if errors.As(err, &busy) {
		return nil, fmt.Errorf("another envd (pid %d) is still %s %s after %s\n  hint: wait for it to finish, then run the command again",
			busy.Holder.PID, busy.Holder.Action, name, busy.Waited.Round(time.Second))
	}
	return l, err
}

// forget removes what envd keeps on this machine for an environment that
// no longer exists: its state dir (host key) and lock file.
func (m *Manager) forget(name string, l *envlock.Lock) {
	os.RemoveAll(m.StateDir(name))
	l.Remove()
}

// NotFound is the error for a name with no environment.
func NotFound(name string) error {
	return fmt.Errorf("no environment named %q\n  hint: envd ls lists them; envd up starts one", name)
}

// Get returns the environment, with a helpful error when there is none.
func (m *Manager) Get(ctx context.Context, name string) (*runtime.Env, error) {
	env, err := m.Runtime.Get(ctx, name)
	if errors.Is(err, runtime.ErrNotFound) {
		return nil, NotFound(name)
	}
	return env, err
}

// SSHUser is who ssh logs in as: the dev user, which carries the host
// user's UID where the project is shared; root stays root there.
func SSHUser(rt runtime.Runtime) string {
	if rt.Project() == runtime.ProjectShared && os.Getuid() == 0 {
		return "root"
	}
	return contract.DevUser
}

// Target is how envd's own ssh client reaches a running environment.
func (m *Manager) Target(ctx context.Context, name string) (sshclient.Target, error) {
	env, err := m.Get(ctx, name)
	if err != nil {
		return sshclient.Target{}, err
	}
	if !env.Running {
		return sshclient.Target{}, fmt.Errorf("%s is not running (%s)\n  hint: envd up starts it again", name, env.Status)
	}
	key, err := sshconfig.EnsureUserKey(m.Host.KeyDir)
	if err != nil {
		return sshclient.Target{}, err
	}
	hostKey, err := readHostKey(filepath.Join(m.StateDir(name), contract.HostKeyFile))
	if err != nil {
		return sshclient.Target{}, err
	}
	return m.target(name, key.Signer, hostKey, env.Labels[contract.LabelForwardAgent] == "true"), nil
}

func (m *Manager) target(name string, signer ssh.Signer, hostKey ssh.PublicKey, forwardAgent bool) sshclient.Target {
	return sshclient.Target{
		Addr: sshconfig.Alias(name), User: SSHUser(m.Runtime), Signer: signer, HostKey: hostKey, ForwardAgent: forwardAgent,
		Dial: func(ctx context.Context) (net.Conn, error) { return m.Runtime.Dial(ctx, name, contract.SSHPort) },
	}
}

func readHostKey(path string) (ssh.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("the environment's host key is missing (%v)\n  hint: envd up --force recreates the environment", err)
	}
	signer, err := ssh.ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("host key %s: %w", path, err)
	}
	return signer.PublicKey(), nil
}

// ensureHostKey loads the environment's host key, creating it on first use;
// it returns the key file's PEM and the public key. The new key is written
// aside and linked into place, which fails if another envd made one
// meanwhile: then that one is used, so two first ups never end with
// different keys.
func ensureHostKey(path string) ([]byte, ssh.PublicKey, error) {
	for {
		data, err := os.ReadFile(path)
		if err == nil {
			signer, err := ssh.ParsePrivateKey(data)
			if err != nil {
				return nil, nil, fmt.Errorf("host key %s: %w\n  hint: remove it; envd up makes a new one", path, err)
			}
			return data, signer.PublicKey(), nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, nil, err
		}
		pem, pub, err := sshconfig.NewHostKey()
		if err != nil {
			return nil, nil, err
		}
		tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
		if err != nil {
			return nil, nil, err
		}
		_, err = tmp.Write(pem)
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Link(tmp.Name(), path) // CreateTemp made it 0600
		}
		os.Remove(tmp.Name())
		if err == nil {
			return pem, pub, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, nil, err
		}
	}
}

// privateDir creates dir for secrets: 0700, whatever the umask.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.Chmod(dir, 0o700)
}

// sshEntry is the environment's block in the user's ssh config.
func (m *Manager) sshEntry(name, keyPath string, env *runtime.Env, forwardAgent bool) sshconfig.Entry {
	e := sshconfig.Entry{
		Name: name, HostName: "127.0.0.1", Port: contract.SSHPort, User: SSHUser(m.Runtime),
		IdentityFile: keyPath, KnownHostsFile: m.Host.KnownHosts, ForwardAgent: forwardAgent,
		Proxy: m.Host.Envd, Context: m.Context,
	}
	if p := env.Port(contract.SSHPort); p != nil && p.HostPort != 0 {
		e.HostName, e.Port = p.HostIP, p.HostPort // for the record: ProxyCommand finds it wherever it is
	}
	return e
}

// writeSSHEntry writes the environment's ssh entry and pins its host key.
func (m *Manager) writeSSHEntry(name string, env *runtime.Env, hostKey ssh.PublicKey, forwardAgent bool) error {
	key, err := sshconfig.EnsureUserKey(m.Host.KeyDir)
	if err != nil {
		return err
	}
	if err := sshconfig.Add(m.Host.SSHConfig, m.sshEntry(name, key.Path, env, forwardAgent)); err != nil {
		return err
	}
	return sshconfig.KnownHosts{Path: m.Host.KnownHosts}.Pin(sshconfig.Alias(name), hostKey)
}

// removeSSHEntry undoes writeSSHEntry.
func (m *Manager) removeSSHEntry(name string) error {
	if err := sshconfig.Remove(m.Host.SSHConfig, name); err != nil {
		return err
	}
	return sshconfig.KnownHosts{Path: m.Host.KnownHosts}.Unpin(sshconfig.Alias(name))
}
