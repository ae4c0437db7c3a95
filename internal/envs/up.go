package envs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"envd.dev/envd/internal/agent"
	"envd.dev/envd/internal/contract"
	"envd.dev/envd/internal/projsync"
	"envd.dev/envd/internal/runtime"
	"envd.dev/envd/internal/sshclient"
	"envd.dev/envd/internal/sshconfig"
)

// BuildFunc builds the environment's image (or finds it up to date) and
// delivers it the runtime's way; it returns the reference to run.
type BuildFunc func(ctx context.Context) (image string, err error)

// UpRequest is one envd up.
type UpRequest struct {
	// Spec is the environment without its image and secrets, which Up adds.
	Spec  runtime.Spec
	Build BuildFunc
	// Agent is the agent's config; Up writes it into the secrets.
	Agent *agent.Config
	// ForwardAgent: the ssh entry and envd's client forward the user's agent.
	ForwardAgent bool
	// Force recreates a running or stopped environment.
	Force bool
	// Timeout bounds the wait for ssh.
	Timeout time.Duration
	// CheckServices waits briefly for daemons to start and fails on one
	// that cannot.
	CheckServices bool
}

// UpResult is a ready environment.
type UpResult struct {
	Env *runtime.Env
	// AlreadyRunning: nothing was built or started (no --force).
	AlreadyRunning bool
	// Resumed: a stopped environment was started again as it was.
	Resumed bool
	// Copied says what the first copy of the project moved, "" none.
	Copied string
	Target sshclient.Target
}

// Up builds, starts, waits for and reaches one environment. Every step
// before "ready" undoes itself on failure, Ctrl-C (ctx) included: a new
// environment is removed with its ssh entry, a resumed one stopped again,
// and a first up leaves no state behind.
func (m *Manager) Up(ctx context.Context, req UpRequest) (res *UpResult, err error) {
	name := req.Spec.Name
	if m.Runtime.Project() != runtime.ProjectShared && len(req.Spec.Mounts) > 0 {
		return nil, fmt.Errorf("%s would mount %s from this machine, which the %s runtime cannot see\n  hint: drop runtime.mount/-v for this context; the project directory is copied in, and envd sync moves changes", name, req.Spec.Mounts[0].Source, m.Runtime.Kind())
	}
	// One envd at a time creates or removes this environment: the loser
	// waits, then finds it running.
	lock, err := m.lock(ctx, name, "starting")
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	if err := m.checkOwner(name); err != nil {
		return nil, err // and its state is left alone
	}
	defer func() {
		// A failed first up (or replacement) leaves no state dir; while the
		// environment exists, its host key stays, so the pin stays valid.
		if err != nil {
			getCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if _, gerr := m.Runtime.Get(getCtx, name); errors.Is(gerr, runtime.ErrNotFound) {
				m.forget(name, lock)
			}
		}
	}()
	existing, err := m.Runtime.Get(ctx, name)
	if errors.Is(err, runtime.ErrNotFound) {
		existing = nil
	} else if err != nil {
		return nil, err
	}
	owner, err := m.ownerID()
	if err != nil {
		return nil, err
	}
	if err := m.checkMadeHere(existing, owner); err != nil {
		return nil, err
	}
	if existing != nil && existing.Running && !req.Force {
		// An envd killed during up leaves it without its ssh entry; a
		// container of an older envd gets a new ssh port at every start.
		if hostKey, err := readHostKey(m.hostKeyPath(name)); err == nil {
			if err := m.writeSSHEntry(name, existing, hostKey, existing.Labels[contract.LabelForwardAgent] == "true"); err != nil {
				return nil, err
			}
		}
		return &UpResult{Env: existing, AlreadyRunning: true}, nil
	}

	image, err := req.Build(ctx)
	if err != nil {
		return nil, err
	}
	spec := req.Spec
	spec.Image = image
	spec.Labels = maps.Clone(spec.Labels)
	if spec.Labels == nil {
		spec.Labels = map[string]string{}
	}
	spec.Labels[contract.LabelOwner] = owner
	keeper, _ := m.Runtime.(runtime.Keeper)

	resume := false
	if existing != nil {
		if keeper != nil {
			resume, err = m.resumeOrReplace(ctx, keeper, existing, spec, req.Agent.LogDir, req.Force)
		} else {
			why := existing.Status // not running
			if req.Force {
				why = "--force"
			}
			m.logf("replacing %s (%s)", name, why)
			err = m.Runtime.Remove(ctx, name)
		}
		if err != nil {
			return nil, err
		}
	}

	hostKey, err := m.secrets(&spec, req.Agent)
	if err != nil {
		return nil, err
	}

	// A project copied in by an earlier up holds work: a failure keeps it.
	keptProject, err := m.hasProject(ctx, name)
	if err != nil {
		return nil, err
	}
	// From here on, a failure (Ctrl-C included) removes what this up made,
	// or stops again the one it resumed.
	ready := false
	defer func() {
		if err == nil || ready {
			return
		}
		cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if resume {
			keeper.Stop(cleanup, name)
			return
		}
		m.Runtime.Remove(cleanup, name)
		if d, ok := m.Runtime.(runtime.Destroyer); ok && !keptProject {
			d.Destroy(cleanup, name)
		}
		m.removeSSHEntry(name)
	}()
	var env *runtime.Env
	if resume {
		if env, err = keeper.Resume(ctx, spec); err != nil {
			return nil, fmt.Errorf("starting %s again: %w\n  hint: envd up --force recreates it, losing what it holds outside its mounts", name, err)
		}
		m.logf("started %s again, as it was", name)
	} else if env, err = m.Runtime.Start(ctx, spec); err != nil {
		return nil, err
	}

	key, err := sshconfig.EnsureUserKey(m.Host.KeyDir)
	if err != nil {
		return nil, err
	}
	target := m.target(name, key.Signer, hostKey, req.ForwardAgent)
	waitCtx, cancel := context.WithTimeout(ctx, req.Timeout)
	defer cancel()
	if err := sshclient.WaitReady(waitCtx, target, func(ctx context.Context) error {
		return m.stillRunning(ctx, name, env.RestartCount)
	}); err != nil {
		return nil, m.startFailure(ctx, name, err, req.Timeout)
	}
	res = &UpResult{Resumed: resume, Target: target}
	if res.Copied, err = m.copyProject(ctx, name, target, spec.Project); err != nil {
		return nil, err
	}
	if req.CheckServices {
		if err := checkServices(ctx, target, req.Agent.LogDir); err != nil {
			return nil, err
		}
	}
	if err := m.writeSSHEntry(name, env, hostKey, req.ForwardAgent); err != nil {
		return nil, err
	}
	if res.Env, err = m.Runtime.Get(ctx, name); err != nil {
		return nil, err
	}
	// Ready: what follows (the shell, its exit code) never undoes the up.
	ready = true
	return res, nil
}

func (m *Manager) hostKeyPath(name string) string {
	return m.StateDir(name) + "/" + contract.HostKeyFile
}

// secrets fills in the spec's files for contract.RunDir: the host key (kept
// on this machine across ups, so the pin stays valid), the user's public key
// and the agent's config. It returns the host's public key.
func (m *Manager) secrets(spec *runtime.Spec, cfg *agent.Config) (ssh.PublicKey, error) {
	if err := privateDir(m.StateDir(spec.Name)); err != nil {
		return nil, err
	}
	if err := os.WriteFile(m.ownerPath(spec.Name), []byte(m.contextName()+"\n"), 0o600); err != nil {
		return nil, err
	}
	pem, hostKey, err := ensureHostKey(m.hostKeyPath(spec.Name))
	if err != nil {
		return nil, err
	}
	key, err := sshconfig.EnsureUserKey(m.Host.KeyDir)
	if err != nil {
		return nil, err
	}
	conf, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, err
	}
	spec.Secrets = map[string][]byte{
		contract.HostKeyFile:        pem,
		contract.AuthorizedKeysFile: []byte(key.AuthorizedKey + "\n"),
		contract.AgentConfigFile:    conf, // holds the Jupyter token
	}
	return hostKey, nil
}

// One name is one environment on this machine (one ssh alias, one state
// dir), whichever context it runs in: the state dir records the context.
func (m *Manager) ownerPath(name string) string { return filepath.Join(m.StateDir(name), "context") }

func (m *Manager) contextName() string {
	if m.Context == "" {
		return "default"
	}
	return m.Context
}

// checkOwner refuses a name that an environment of another context has.
func (m *Manager) checkOwner(name string) error {
	b, err := os.ReadFile(m.ownerPath(name))
	if err != nil {
		return nil // none yet, or made by an envd that did not record it
	}
	if owner := strings.TrimSpace(string(b)); owner != m.contextName() {
		return fmt.Errorf("an environment named %s already runs in context %s; names are one per machine (one ssh alias %s)\n  hint: give this one another --name, or remove that one first: envd --context %s down %s",
			name, owner, sshconfig.Alias(name), owner, name)
	}
	return nil
}

// ownerID names this user's envd: its user key's fingerprint, the key
// that reaches its environments.
func (m *Manager) ownerID() (string, error) {
	key, err := sshconfig.EnsureUserKey(m.Host.KeyDir)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(key.Signer.PublicKey().Marshal())
	return hex.EncodeToString(sum[:8]), nil
}

// checkMadeHere refuses an environment another envd made: another user of
// the same Docker, server or namespace, or this user on another machine.
// Taking it over (--force, down) would lose that one's work, and its keys
// are not ours. An environment of an older envd carries no owner.
func (m *Manager) checkMadeHere(env *runtime.Env, owner string) error {
	if env == nil {
		return nil
	}
	if made := env.Labels[contract.LabelOwner]; made != "" && made != owner {
		return fmt.Errorf("the environment %s on this %s runtime was made by another envd (another user of it, or you on another machine), not by yours\n  hint: give yours another --name; whoever made it removes it with envd down %s",
			env.Name, m.Runtime.Kind(), env.Name)
	}
	return nil
}

// stillRunning fails once the environment exited, even if the runtime
// started it again since (restarts was its count at the start).
func (m *Manager) stillRunning(ctx context.Context, name string, restarts int) error {
	env, err := m.Runtime.Get(ctx, name)
	if err != nil {
		return err
	}
	if !env.Running || env.RestartCount > restarts {
		return errExited
	}
	return nil
}

var errExited = errors.New("the environment exited")

// startFailure explains why ssh never answered, with the environment's
// last log lines.
func (m *Manager) startFailure(ctx context.Context, name string, err error, timeout time.Duration) error {
	var tail string
	logCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if rc, lerr := m.Runtime.Logs(logCtx, name, false, 20); lerr == nil {
		b, _ := io.ReadAll(rc)
		rc.Close()
		tail = strings.TrimRight(string(b), "\n")
	}
	var msg string
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, errExited):
		msg = "the environment's container exited while starting"
	case errors.Is(err, context.DeadlineExceeded):
		msg = fmt.Sprintf("ssh did not answer within %s: %v", timeout, err)
	default:
		msg = err.Error()
	}
	if tail != "" {
		msg += "\n  last lines of its log:\n    " + strings.ReplaceAll(tail, "\n", "\n    ")
	}
	return errors.New(msg + "\n  hint: fix what the log says (a daemon or init command, the image), then run envd up again; --timeout waits longer")
}

// hasProject says whether the runtime keeps a project copied in before.
func (m *Manager) hasProject(ctx context.Context, name string) (bool, error) {
	if synced, ok := m.Runtime.(runtime.Synced); ok {
		return synced.Synced(ctx, name)
	}
	return false, nil
}

// copyProject copies the project into an environment whose project is
// copied, on its first start only: later ups never overwrite the work done
// inside (envd sync moves changes).
func (m *Manager) copyProject(ctx context.Context, name string, t sshclient.Target, p runtime.Project) (string, error) {
	synced, ok := m.Runtime.(runtime.Synced)
	if m.Runtime.Project() != runtime.ProjectCopied || !ok {
		return "", nil
	}
	done, err := synced.Synced(ctx, name)
	if err != nil || done {
		return "", err
	}
	stats, err := m.push(ctx, t, p)
	if err != nil {
		return "", fmt.Errorf("copying the project into %s: %w", name, err)
	}
	return stats.String(), synced.MarkSynced(ctx, name)
}

// push copies the project directory into the environment over sftp.
func (m *Manager) push(ctx context.Context, t sshclient.Target, p runtime.Project) (projsync.Stats, error) {
	ign, err := projsync.LoadIgnore(p.HostDir)
	if err != nil {
		return projsync.Stats{}, err
	}
	c, err := sshclient.Dial(ctx, t)
	if err != nil {
		return projsync.Stats{}, err
	}
	defer c.Close()
	sc, err := sftp.NewClient(c)
	if err != nil {
		return projsync.Stats{}, err
	}
	defer sc.Close()
	return projsync.Push(sc, p.HostDir, p.Path, ign)
}

// checkServices waits briefly for the daemons to start and fails when one
// cannot (a command that does not exist, one that exits at once), with the
// end of its log. Services still waiting for init commands are not waited for.
func checkServices(ctx context.Context, t sshclient.Target, logDir string) error {
	c, err := sshclient.Dial(ctx, t)
	if err != nil {
		return err
	}
	defer c.Close()
	deadline := time.Now().Add(2 * time.Second)
	for {
		out, err := sshclient.Output(c, "cat "+logDir+"/status.json 2>/dev/null")
		var st agent.Status
		if err == nil && json.Unmarshal(out, &st) == nil {
			settled := true
			for _, svc := range st.Services {
				switch svc.State {
				case agent.StateBackoff, agent.StateExited:
					logTail, _ := sshclient.Output(c, fmt.Sprintf("tail -n 10 %s/%s.log", logDir, svc.Name))
					msg := fmt.Sprintf("daemon %s did not start: %s", svc.Name, svc.LastError)
					if tail := strings.TrimSpace(string(logTail)); tail != "" {
						msg += "\n  last lines of its log:\n    " + strings.ReplaceAll(tail, "\n", "\n    ")
					}
					return errors.New(msg + "\n  hint: fix its command in runtime.daemon(...) in build.envd (is the program installed and on PATH?)")
				case agent.StatePending, "":
					settled = false
				}
			}
			if settled && len(st.Services) > 0 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return nil // still pending (init commands running): `envd logs` shows progress
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
