package envs

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gliderssh "github.com/gliderlabs/ssh"
	"github.com/pkg/sftp"
	gossh "golang.org/x/crypto/ssh"

	"envd.dev/envd/internal/agent"
	"envd.dev/envd/internal/contract"
	"envd.dev/envd/internal/runtime"
	"envd.dev/envd/internal/sshconfig"
)

// fakeRuntime runs "environments" as in-process sshds made from the
// secrets envd gives it, so Up's whole path (secrets, wait for ssh, copy
// of the project over sftp, ssh entry) runs for real without a container.
type fakeRuntime struct {
	t       *testing.T
	project runtime.ProjectTransport

	mu       sync.Mutex
	envs     map[string]*fakeEnv
	starts   []runtime.Spec
	removed  []string
	destroy  []string
	synced   map[string]bool
	startErr error
	// silent: the sshd accepts TCP but never speaks ssh (a hung start).
	silent bool
	// onDial runs at every dial, e.g. to cancel the up.
	onDial func()
}

type fakeEnv struct {
	env runtime.Env
	ln  net.Listener
	srv *gliderssh.Server
}

func newFake(t *testing.T, project runtime.ProjectTransport) *fakeRuntime {
	f := &fakeRuntime{t: t, project: project, envs: map[string]*fakeEnv{}, synced: map[string]bool{}}
	t.Cleanup(func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, e := range f.envs {
			e.stop()
		}
	})
	return f
}

func (e *fakeEnv) stop() {
	if e.srv != nil {
		e.srv.Close()
	}
	e.ln.Close()
}

func (f *fakeRuntime) Kind() string                      { return "fake" }
func (f *fakeRuntime) Delivery() runtime.Delivery        { return runtime.DeliverPush }
func (f *fakeRuntime) Project() runtime.ProjectTransport { return f.project }

func (f *fakeRuntime) Start(ctx context.Context, s runtime.Spec) (*runtime.Env, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.starts = append(f.starts, s)
	if f.startErr != nil {
		return nil, f.startErr
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	e := &fakeEnv{ln: ln, env: runtime.Env{Name: s.Name, Image: s.Image, Status: "running", Running: true, Labels: s.Labels}}
	if f.silent {
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
			}
		}()
	} else {
		e.srv = f.sshd(s)
		go e.srv.Serve(ln)
	}
	f.envs[s.Name] = e
	env := e.env
	return &env, nil
}

// sshd answers with the host key and for the user key of the secrets,
// runs every command as a success, and serves sftp on the real file system.
func (f *fakeRuntime) sshd(s runtime.Spec) *gliderssh.Server {
	hostKey, err := gossh.ParsePrivateKey(s.Secrets[contract.HostKeyFile])
	if err != nil {
		f.t.Errorf("host key secret: %v", err)
	}
	authorized, _, _, _, err := gossh.ParseAuthorizedKey(s.Secrets[contract.AuthorizedKeysFile])
	if err != nil {
		f.t.Errorf("authorized_keys secret: %v", err)
	}
	srv := &gliderssh.Server{
		Handler: func(s gliderssh.Session) { s.Exit(0) },
		PublicKeyHandler: func(_ gliderssh.Context, key gliderssh.PublicKey) bool {
			return authorized != nil && gliderssh.KeysEqual(key, authorized)
		},
		SubsystemHandlers: map[string]gliderssh.SubsystemHandler{"sftp": func(s gliderssh.Session) {
			srv, err := sftp.NewServer(s)
			if err == nil {
				srv.Serve()
				srv.Close()
			}
		}},
	}
	if hostKey != nil {
		srv.AddHostKey(hostKey)
	}
	return srv
}

func (f *fakeRuntime) Get(_ context.Context, name string) (*runtime.Env, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.envs[name]
	if !ok {
		return nil, runtime.ErrNotFound
	}
	env := e.env
	return &env, nil
}

func (f *fakeRuntime) List(context.Context) ([]runtime.Env, error) { return nil, nil }

func (f *fakeRuntime) Remove(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removed = append(f.removed, name)
	if e, ok := f.envs[name]; ok {
		e.stop()
		delete(f.envs, name)
	}
	return nil
}

func (f *fakeRuntime) Logs(context.Context, string, bool, int) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader("agent: the last words\n")), nil
}

func (f *fakeRuntime) Dial(ctx context.Context, name string, port int) (net.Conn, error) {
	if f.onDial != nil {
		f.onDial()
	}
	f.mu.Lock()
	e, ok := f.envs[name]
	f.mu.Unlock()
	if !ok || port != contract.SSHPort {
		return nil, errors.New("nothing there")
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", e.ln.Addr().String())
}

func (f *fakeRuntime) MarkSynced(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.synced[name] = true
	return nil
}

func (f *fakeRuntime) Synced(_ context.Context, name string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.synced[name], nil
}

func (f *fakeRuntime) Destroy(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.synced[name] {
		return runtime.ErrNotFound
	}
	f.destroy = append(f.destroy, name)
	delete(f.synced, name)
	return nil
}

// setup is a Manager on rt with its host files in a temp dir.
func setup(t *testing.T, rt runtime.Runtime) *Manager {
	dir := t.TempDir()
	return &Manager{Runtime: rt, Context: "cluster", Host: Host{
		StateRoot:  filepath.Join(dir, "envs"),
		SSHConfig:  filepath.Join(dir, "ssh", "config"),
		KnownHosts: filepath.Join(dir, "known_hosts"),
		KeyDir:     dir,
		Envd:       "/usr/local/bin/envd",
	}}
}

// request is an up of "proj" whose build counts its calls.
func request(t *testing.T, project string, builds *int) UpRequest {
	return UpRequest{
		Spec: runtime.Spec{Name: "proj", Project: runtime.Project{HostDir: project, Path: filepath.Join(t.TempDir(), "inside")}},
		Build: func(context.Context) (string, error) {
			*builds++
			return "registry.test/proj@sha256:abc", nil
		},
		Agent:   &agent.Config{LogDir: "/home/envd/.local/state/envd/logs"},
		Timeout: 10 * time.Second,
	}
}

func projectDir(t *testing.T) string {
	dir := t.TempDir()
	for name, data := range map[string]string{"train.py": "print(1)\n", "data/big.bin": "x", ".envdignore": "data/\n"} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestUpStartsReachesAndWritesTheSSHEntry(t *testing.T) {
	rt := newFake(t, runtime.ProjectCopied)
	m := setup(t, rt)
	builds := 0
	req := request(t, projectDir(t), &builds)
	res, err := m.Up(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if builds != 1 || len(rt.starts) != 1 || rt.starts[0].Image != "registry.test/proj@sha256:abc" {
		t.Fatalf("builds %d, starts %+v: want one build and a start of the built image", builds, rt.starts)
	}
	secrets := rt.starts[0].Secrets
	for _, f := range []string{contract.HostKeyFile, contract.AuthorizedKeysFile, contract.AgentConfigFile} {
		if len(secrets[f]) == 0 {
			t.Errorf("secret %s missing", f)
		}
	}
	// The host key stays on this machine, its owner's only, for the pin.
	for path, want := range map[string]os.FileMode{m.StateDir("proj"): 0o700, m.hostKeyPath("proj"): 0o600} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v, mode %v; want %v", path, err, fi.Mode().Perm(), want)
		}
	}
	// The project was copied in over sftp, without what .envdignore names.
	if _, err := os.Stat(filepath.Join(req.Spec.Project.Path, "train.py")); err != nil || res.Copied == "" {
		t.Errorf("project not copied (%q): %v", res.Copied, err)
	}
	if _, err := os.Stat(filepath.Join(req.Spec.Project.Path, "data")); err == nil {
		t.Error("an ignored directory was copied")
	}
	entries, err := sshconfig.Entries(m.Host.SSHConfig)
	if err != nil || len(entries) != 1 || entries[0].Context != "cluster" || entries[0].Proxy != "/usr/local/bin/envd" || entries[0].User != contract.DevUser {
		t.Fatalf("ssh entries %+v, %v: want one for proj through envd --context cluster", entries, err)
	}
	known, _ := os.ReadFile(m.Host.KnownHosts)
	if !strings.Contains(string(known), sshconfig.Alias("proj")) {
		t.Errorf("host key not pinned:\n%s", known)
	}

	// A second up finds it running: nothing built or started.
	os.Remove(m.Host.SSHConfig) // as an envd killed during up would leave it
	again, err := m.Up(context.Background(), req)
	if err != nil || !again.AlreadyRunning || builds != 1 || len(rt.starts) != 1 {
		t.Fatalf("second up: %+v, %v, builds %d, starts %d", again, err, builds, len(rt.starts))
	}
	if entries, _ := sshconfig.Entries(m.Host.SSHConfig); len(entries) != 1 {
		t.Error("the ssh entry was not written again")
	}

	// Down, then up: the copied project is not copied over the work inside.
	if _, err := m.Down(context.Background(), "proj", false); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(req.Spec.Project.Path, "train.py"), []byte("work done inside\n"), 0o644)
	if res, err := m.Up(context.Background(), req); err != nil || res.Copied != "" {
		t.Fatalf("up after down: %+v, %v; want no copy", res, err)
	}
	if b, _ := os.ReadFile(filepath.Join(req.Spec.Project.Path, "train.py")); string(b) != "work done inside\n" {
		t.Errorf("the work inside was overwritten: %q", b)
	}
}

func TestUpFailuresLeaveNothing(t *testing.T) {
	for _, tt := range []struct {
		name    string
		prepare func(*fakeRuntime, *UpRequest, context.CancelFunc)
		want    string
	}{
		{"build fails", func(_ *fakeRuntime, r *UpRequest, _ context.CancelFunc) {
			r.Build = func(context.Context) (string, error) { return "", errors.New("step 3 failed") }
		}, "step 3 failed"},
		{"start fails", func(f *fakeRuntime, _ *UpRequest, _ context.CancelFunc) {
			f.startErr = errors.New("no node has nvidia.com/gpu")
		}, "nvidia.com/gpu"},
		{"ssh never answers", func(f *fakeRuntime, r *UpRequest, _ context.CancelFunc) {
			f.silent, r.Timeout = true, 300*time.Millisecond
		}, "the last words"},
		{"Ctrl-C while waiting for ssh", func(f *fakeRuntime, _ *UpRequest, cancel context.CancelFunc) {
			f.silent, f.onDial = true, cancel
		}, context.Canceled.Error()},
		{"a host mount on a copied project", func(_ *fakeRuntime, r *UpRequest, _ context.CancelFunc) {
			r.Spec.Mounts = []runtime.Mount{{Source: "/data", Target: "/data"}}
		}, "runtime.mount"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rt := newFake(t, runtime.ProjectCopied)
			m := setup(t, rt)
			builds := 0
			req := request(t, projectDir(t), &builds)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			tt.prepare(rt, &req, cancel)
			_, err := m.Up(ctx, req)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one saying %q", err, tt.want)
			}
			if len(rt.envs) != 0 {
				t.Errorf("an environment is left: %v", rt.envs)
			}
			if entries, _ := sshconfig.Entries(m.Host.SSHConfig); len(entries) != 0 {
				t.Errorf("ssh entries left: %+v", entries)
			}
			if left, _ := os.ReadDir(m.Host.StateRoot); len(left) != 0 {
				t.Errorf("state left in %s: %v", m.Host.StateRoot, left)
			}
		})
	}
}

func TestDown(t *testing.T) {
	rt := newFake(t, runtime.ProjectCopied)
	m := setup(t, rt)
	builds := 0
	if _, err := m.Up(context.Background(), request(t, projectDir(t), &builds)); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Down(context.Background(), "proj", false); err != nil {
		t.Fatal(err)
	}
	if len(rt.envs) != 0 || len(rt.destroy) != 0 || !rt.synced["proj"] {
		t.Errorf("down: envs %v, destroyed %v, synced %v; want the env gone and its project kept", rt.envs, rt.destroy, rt.synced)
	}
	if entries, _ := sshconfig.Entries(m.Host.SSHConfig); len(entries) != 0 {
		t.Errorf("ssh entry left: %+v", entries)
	}
	if _, err := os.Stat(m.StateDir("proj")); !os.IsNotExist(err) {
		t.Errorf("state dir left: %v", err)
	}
	// destroy after down takes the kept project; a second one finds nothing.
	if _, err := m.Down(context.Background(), "proj", true); err != nil || len(rt.destroy) != 1 {
		t.Fatalf("destroy after down: %v, destroyed %v", err, rt.destroy)
	}
	if _, err := m.Down(context.Background(), "proj", true); err == nil || !strings.Contains(err.Error(), `no environment named "proj"`) {
		t.Errorf("destroy of nothing: %v", err)
	}
}

// One name, one environment on this machine: another context cannot take
// its ssh alias and state.
func TestUpRefusesANameOfAnotherContext(t *testing.T) {
	rt := newFake(t, runtime.ProjectCopied)
	m := setup(t, rt)
	builds := 0
	req := request(t, projectDir(t), &builds)
	if _, err := m.Up(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	other := *m
	other.Runtime, other.Context = newFake(t, runtime.ProjectShared), ""
	_, err := other.Up(context.Background(), req)
	if err == nil || !strings.Contains(err.Error(), "already runs in context cluster") || builds != 1 {
		t.Fatalf("err = %v (builds %d), want a refusal naming the context, before any build", err, builds)
	}
	if _, err := other.Down(context.Background(), "proj", false); err == nil || !strings.Contains(err.Error(), "context cluster") {
		t.Errorf("down in the other context: %v, want a refusal", err)
	}
	if entries, _ := sshconfig.Entries(m.Host.SSHConfig); len(entries) != 1 || entries[0].Context != "cluster" {
		t.Errorf("the first environment's ssh entry changed: %+v", entries)
	}
	if _, err := os.Stat(m.hostKeyPath("proj")); err != nil {
		t.Errorf("its host key went: %v", err)
	}
}

// Two users of one Docker (or server, or namespace) who pick the same name:
// the second cannot take the first one's environment over, --force or not.
func TestUpAndDownRefuseAnEnvironmentOfAnotherEnvd(t *testing.T) {
	rt := newFake(t, runtime.ProjectCopied)
	alice := setup(t, rt)
	builds := 0
	if _, err := alice.Up(context.Background(), request(t, projectDir(t), &builds)); err != nil {
		t.Fatal(err)
	}
	bob := setup(t, rt) // another home: another user key, the same runtime
	for _, force := range []bool{false, true} {
		req := request(t, projectDir(t), &builds)
		req.Force = force
		if _, err := bob.Up(context.Background(), req); err == nil || !strings.Contains(err.Error(), "made by another envd") {
			t.Errorf("bob's up (force %v): %v, want a refusal", force, err)
		}
	}
	if _, err := bob.Down(context.Background(), "proj", true); err == nil || !strings.Contains(err.Error(), "made by another envd") {
		t.Errorf("bob's destroy: %v, want a refusal", err)
	}
	if builds != 1 || len(rt.starts) != 1 {
		t.Errorf("bob built %d and started %d times: the refusal must come first", builds-1, len(rt.starts)-1)
	}
	if env, err := rt.Get(context.Background(), "proj"); err != nil || !env.Running {
		t.Errorf("alice's environment after bob's attempts: %v, %v", env, err)
	}
	if _, err := alice.Down(context.Background(), "proj", true); err != nil {
		t.Errorf("alice's own destroy: %v", err)
	}
}
