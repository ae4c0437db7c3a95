package cli

// envd up is the whole pipeline in one place: build (skipped when nothing
// changed) → agent config and keys → container → ssh ready → ssh config →
// attach. Every step before "ready" undoes itself on failure.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"envd.dev/envd/internal/atomicfile"

	"github.com/docker/go-units"
	"github.com/spf13/cobra"
	"golang.org/x/crypto/ssh"

	"envd.dev/envd/internal/agent"
	"envd.dev/envd/internal/compile"
	"envd.dev/envd/internal/docker"
	"envd.dev/envd/internal/ir"
	"envd.dev/envd/internal/runtime"
	"envd.dev/envd/internal/sshclient"
	"envd.dev/envd/internal/sshconfig"
	"envd.dev/envd/internal/xdg"
)

// Paths inside the container.
const (
	runDir        = "/run/envd" // the environment's state dir, read-only
	hostKeyFile   = "ssh_host_ed25519_key"
	authKeysFile  = "authorized_keys"
	agentConfFile = "agent.json"
	jupyterPort   = 8888
)

type upOptions struct {
	build    buildOptions
	name     string
	detach   bool
	volumes  []string
	host     string
	gpus     string
	noGPU    bool
	cpus     float64
	memory   string
	shmSize  string
	force    bool
	timeout  time.Duration
	sshAsked bool // --gpus given explicitly
	// forwardAgent: the ssh entry and envd's own client forward the user's ssh-agent.
	forwardAgent bool
	// allowMounts are the sensitive host paths runtime.mount may mount.
	allowMounts []string
}

func newUpCmd(s streams) *cobra.Command {
	o := &upOptions{}
	c := &cobra.Command{
		Use:   "up",
		Short: "Build the environment if needed, start it, and open a shell in it over ssh",
		Args:  exactArgs(0),
		RunE: func(c *cobra.Command, _ []string) error {
			o.sshAsked = c.Flags().Changed("gpus")
			return runUp(c.Context(), s, o)
		},
	}
	f := c.Flags()
	f.StringVarP(&o.build.path, "path", "p", ".", "project directory (holds build.envd; mounted at /home/envd/<project>)")
	f.StringVarP(&o.build.file, "file", "f", "build.envd", "build file and function, FILE[:FUNC]")
	f.StringVarP(&o.build.tag, "tag", "t", "", "image name (default <directory name>:dev)")
	f.StringVar(&o.build.progress, "progress", "auto", "build progress: auto, tty, plain, rawjson or quiet")
	f.StringVar(&o.build.mirror, "registry-mirror", "", "docker.io registry mirror for the managed builder")
	f.StringVar(&o.build.caBundle, "ca-bundle", defaultCABundle(), "CA certificates for downloads in build steps")
	f.BoolVar(&o.build.updateModules, "update-modules", false, "fetch every include(git=...) again and move its pin in envd.lock to the current commit of its ref")
	f.StringVar(&o.build.marketplace, "vscode-marketplace", defaultMarketplace(), "Open VSX-compatible URL for install.vscode_extensions")
	f.StringVar(&o.build.loadVia, "load-via", "auto", "how the image reaches Docker: auto, registry or tarball (see envd build --help)")
	f.StringVar(&o.name, "name", "", "environment name (default: the directory's name); ssh <name>.envd")
	f.BoolVarP(&o.detach, "detach", "d", false, "start and print how to connect, without opening a shell")
	f.StringArrayVarP(&o.volumes, "volume", "v", nil, "extra bind mount HOST:CONTAINER[:ro] (repeatable)")
	f.StringArrayVar(&o.allowMounts, "allow-mount", nil, "let runtime.mount mount this host path although it is sensitive (/, a system directory, your home, the Docker socket); repeatable")
	f.StringVar(&o.host, "host", "127.0.0.1", "address the ssh port and exposed ports are published on")
	f.StringVar(&o.gpus, "gpus", "", "GPUs to use: a number or all (default: all when build.envd installs CUDA)")
	f.BoolVar(&o.noGPU, "no-gpu", false, "run without GPUs even when build.envd installs CUDA")
	f.Float64Var(&o.cpus, "cpus", 0, "CPU limit, e.g. 2.5")
	f.StringVar(&o.memory, "memory", "", "memory limit, e.g. 8g")
	f.StringVar(&o.shmSize, "shm-size", "", "size of /dev/shm, e.g. 2g (PyTorch data loaders want more than Docker's 64m)")
	f.BoolVar(&o.force, "force", false, "recreate the environment's container, running or stopped, losing what it holds outside its mounts")
	f.DurationVar(&o.timeout, "timeout", 60*time.Second, "how long to wait for ssh to answer")
	f.BoolVar(&o.forwardAgent, "forward-agent", false, "offer your ssh-agent to this environment's ssh sessions (anything running in it can then use your keys)")
	return c
}

// envPaths are where one environment's host-side files live.
type envPaths struct {
	state      string // mounted read-only at /run/envd
	sshConfig  string
	knownHosts string
	keyDir     string
}

func pathsFor(name string) (envPaths, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return envPaths{}, err
	}
	return envPaths{
		state:      filepath.Join(xdg.DataDir(), "envs", name),
		sshConfig:  filepath.Join(home, ".ssh", "config"),
		knownHosts: filepath.Join(xdg.ConfigDir(), "known_hosts"),
		keyDir:     xdg.ConfigDir(),
	}, nil
}

func runUp(ctx context.Context, s streams, o *upOptions) (err error) {
	start := time.Now()
	if o.gpus != "" && o.noGPU {
		return usageError{errors.New("--gpus and --no-gpu contradict each other")}
	}
	p, err := o.build.plan()
	if err != nil {
		return err
	}
	name := o.name
	if name == "" {
		name = p.project
	}
	if err := sshconfig.ValidateName(name); err != nil {
		return usageError{fmt.Errorf("--name: %w", err)}
	}
	if !p.env.Base.Dev {
		return ir.Errorf(p.env.Base.Pos, `use base(os="ubuntu22.04", language="python3") or base(image=..., dev=True)`,
			"envd up needs a dev environment (one with envd's agent), but this base has dev=False")
	}
	spec, err := o.resources(s.err, p)
	if err != nil {
		return err
	}

	dk, err := docker.Connect(ctx)
	if err != nil {
		return err
	}
	defer dk.Close()
	rt := runtime.NewDocker(dk.API())
	paths, err := pathsFor(name)
	if err != nil {
		return err
	}

	// One envd at a time creates or removes this environment: the loser
	// waits, then finds it running.
	lock, err := lockEnv(ctx, s, name, "starting")
	if err != nil {
		return err
	}
	defer lock.Release()
	defer func() {
		// A failed first up (or replacement) leaves no state dir behind; while
		// a container exists, its host key stays, so the pin stays valid.
		if err != nil {
			getCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if _, gerr := rt.Get(getCtx, name); errors.Is(gerr, runtime.ErrNotFound) {
				forgetEnv(paths, lock)
			}
		}
	}()
	existing, err := rt.Get(ctx, name)
	if errors.Is(err, runtime.ErrNotFound) {
		existing = nil
	} else if err != nil {
		return err
	}
	if existing != nil && existing.Running && !o.force {
		if err := repairSSHEntry(paths, name, existing); err != nil {
			return err
		}
		fmt.Fprintf(s.out, "%s is already running (use --force to recreate it)\n", name)
		printEndpoints(s.out, name, existing)
		return nil
	}

	res, err := buildPlanned(ctx, s, &o.build, p)
	if err != nil {
		return err
	}
	if res.Skipped {
		fmt.Fprintf(s.err, "envd: %s is up to date, not rebuilt\n", p.tag)
	} else {
		fmt.Fprintf(s.err, "envd: built %s, %d of %d steps cached\n", p.tag, res.Cached, res.Steps)
	}

	spec.Name, spec.Image = name, p.tag
	spec.User = "root" // the agent gives the dev user the host's UID, then drops to it
	spec.Labels = map[string]string{runtime.LabelProjectDir: p.dir, runtime.LabelStateDir: paths.state}
	if o.forwardAgent {
		spec.Labels[labelForwardAgent] = "true"
	}
	spec.Mounts = append([]runtime.Mount{
		{Source: p.dir, Target: projectMount(p)},
		{Source: paths.state, Target: runDir, ReadOnly: true},
	}, spec.Mounts...)
	spec.Env = map[string]string{agent.ConfigPathEnv: runDir + "/" + agentConfFile, "ENVD_NAME": name}
	spec.Ports = append([]runtime.Port{{Name: "ssh", ContainerPort: compile.SSHPort, HostIP: o.host}}, exposedPorts(p.env, o.host)...)

	resume := false
	if existing != nil {
		if resume, err = resumeOrReplace(ctx, s, rt, dk, existing, spec, o.force); err != nil {
			return err
		}
	}

	key, err := sshconfig.EnsureUserKey(paths.keyDir)
	if err != nil {
		return err
	}
	hostPub, token, err := writeEnvState(paths.state, key.AuthorizedKey, p, name)
	if err != nil {
		return err
	}

	// From here on, a failure (Ctrl-C included) removes the container and
	// the ssh entry envd made, or stops again the one it resumed.
	ready := false
	defer func() {
		if err == nil || ready {
			return
		}
		cleanupCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if resume {
			rt.Stop(cleanupCtx, name)
			return
		}
		rt.Remove(cleanupCtx, name)
		sshconfig.Remove(paths.sshConfig, name)
		sshconfig.KnownHosts{Path: paths.knownHosts}.Unpin(sshconfig.Alias(name))
	}()
	var env *runtime.Env
	if resume {
		if env, err = rt.Resume(ctx, name); err != nil {
			return fmt.Errorf("starting %s again: %w\n  hint: envd up --force recreates it, losing what it holds outside its mounts", name, err)
		}
		fmt.Fprintf(s.err, "envd: started %s again, as it was\n", name)
	} else if env, err = rt.Start(ctx, spec); err != nil {
		return err
	}

	sshPort := env.Port(compile.SSHPort)
	if sshPort == nil {
		return errors.New("docker did not publish the ssh port")
	}
	target := sshclient.Target{
		Addr: dialAddr(sshPort), User: containerUser(), Signer: key.Signer, HostKey: hostPub,
		ForwardAgent: o.forwardAgent,
	}
	waitCtx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if err := sshclient.WaitReady(waitCtx, target, func(ctx context.Context) error {
		return stillRunning(ctx, rt, name, env.RestartCount)
	}); err != nil {
		return startFailure(ctx, rt, name, err, o.timeout)
	}

	if len(p.env.Daemons) > 0 || p.env.Jupyter != nil {
		if err := checkServices(ctx, target); err != nil {
			return err
		}
	}
	if err := sshconfig.Add(paths.sshConfig, sshconfig.Entry{
		Name: name, HostName: sshPort.HostIP, Port: sshPort.HostPort, User: target.User,
		IdentityFile: key.Path, KnownHostsFile: paths.knownHosts, ForwardAgent: o.forwardAgent, Proxy: envdPath(),
	}); err != nil {
		return err
	}
	if err := (sshconfig.KnownHosts{Path: paths.knownHosts}).Pin(sshconfig.Alias(name), hostPub); err != nil {
		return err
	}
	if env, err = rt.Get(ctx, name); err != nil {
		return err
	}
	fmt.Fprintf(s.out, "%s is ready in %.1fs\n", name, time.Since(start).Seconds())
	printEndpoints(s.out, name, env)
	if token != "" {
		if jp := env.Port(jupyterContainerPort(p.env)); jp != nil {
			fmt.Fprintf(s.out, "  jupyter  http://%s/lab?token=%s\n", hostPort(jp), token)
		}
	}
	// Ready: what follows (the shell, its exit code) never undoes the up.
	ready = true
	lock.Release()
	if o.detach {
		return nil
	}
	return attach(ctx, target)
}

// resources turns the resource flags and mounts into a Spec, and says on w
// which host paths it mounts.
func (o *upOptions) resources(w io.Writer, p *buildPlan) (runtime.Spec, error) {
	env := p.env
	var spec runtime.Spec
	switch {
	case o.noGPU:
	case o.gpus != "":
		spec.GPUs = o.gpus
	case env.Resources != nil && env.Resources.GPUs != 0:
		spec.GPUs = strconv.Itoa(env.Resources.GPUs) // config.gpu(count)
		if env.Resources.GPUs < 0 {
			spec.GPUs = "all"
		}
	case env.CUDA != nil:
		spec.GPUs = "all"
	}
	if env.Resources != nil && env.Resources.ShmSizeMB > 0 {
		spec.ShmSize = int64(env.Resources.ShmSizeMB) << 20 // config.shm_size; --shm-size wins
	}
	spec.CPUs = o.cpus
	for _, m := range []struct {
		flag, v string
		dst     *int64
	}{{"--memory", o.memory, &spec.Memory}, {"--shm-size", o.shmSize, &spec.ShmSize}} {
		if m.v == "" {
			continue
		}
		n, err := units.RAMInBytes(m.v)
		if err != nil || n <= 0 {
			return spec, usageError{fmt.Errorf("%s %q: give a size such as 512m or 8g", m.flag, m.v)}
		}
		*m.dst = n
	}
	for _, v := range o.volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || !strings.HasPrefix(parts[1], "/") || (len(parts) == 3 && parts[2] != "ro" && parts[2] != "rw") {
			return spec, usageError{fmt.Errorf("-v %q: use HOST:CONTAINER[:ro], with an absolute container path", v)}
		}
		src, err := filepath.Abs(parts[0])
		if err != nil {
			return spec, err
		}
		if _, err := os.Stat(src); err != nil {
			return spec, usageError{fmt.Errorf("-v %q: %s does not exist", v, src)}
		}
		spec.Mounts = append(spec.Mounts, runtime.Mount{Source: src, Target: parts[1], ReadOnly: len(parts) == 3 && parts[2] == "ro"})
	}
	mounts, err := o.buildMounts(env, p.dir)
	if err != nil {
		return spec, err
	}
	spec.Mounts = append(spec.Mounts, mounts...)
	// Every host path the environment sees, said before anything starts.
	fmt.Fprintf(w, "envd: mounting %s at %s (the project directory)\n", p.dir, projectMount(p))
	for _, m := range spec.Mounts {
		mode := "read-write"
		if m.ReadOnly {
			mode = "read-only"
		}
		fmt.Fprintf(w, "envd: mounting %s at %s (%s)\n", m.Source, m.Target, mode)
	}
	return spec, nil
}

// buildMounts resolves runtime.mount() sources (~ is the home directory, a
// relative path is relative to the build directory), refuses the host's
// sensitive paths unless --allow-mount names them, and creates a missing
// source only under the home or build directory.
func (o *upOptions) buildMounts(env *ir.Environment, buildDir string) ([]runtime.Mount, error) {
	home, _ := os.UserHomeDir()
	allowed := map[string]bool{}
	for _, a := range o.allowMounts {
		if abs, err := filepath.Abs(a); err == nil {
			allowed[abs] = true
		}
	}
	var mounts []runtime.Mount
	var errs []error
	for _, m := range env.Mounts {
		src := m.HostPath
		switch {
		case src == "~":
			src = home
		case strings.HasPrefix(src, "~/"):
			src = filepath.Join(home, src[2:])
		case !filepath.IsAbs(src):
			src = filepath.Join(buildDir, src)
		}
		src = filepath.Clean(src)
		real := src
		if r, err := filepath.EvalSymlinks(src); err == nil {
			real = r
		}
		reason := sensitiveMount(src, home)
		if reason == "" {
			reason = sensitiveMount(real, home)
		}
		if reason != "" && !allowed[src] && !allowed[real] {
			errs = append(errs, ir.Errorf(m.Pos, fmt.Sprintf("if you mean it, run envd up --allow-mount %s; otherwise mount a directory of your project or home", src),
				"runtime.mount would give the environment read-write access to %s: %s", src, reason))
			continue
		}
		mounts = append(mounts, runtime.Mount{Source: src, Target: m.EnvdPath})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for i, m := range mounts {
		if _, err := os.Lstat(m.Source); err == nil {
			continue
		}
		pos := env.Mounts[i].Pos
		// A data.envd() directory may not exist yet; Docker would make it
		// root's, anywhere. envd makes it only where the user's own files are.
		if !(within(m.Source, home) && m.Source != home) && !within(m.Source, buildDir) {
			return nil, ir.Errorf(pos, fmt.Sprintf("create it first (mkdir -p %s), or fix runtime.mount(host_path=...)", m.Source),
				"mount source %s does not exist, and envd creates missing ones only under your home or the build directory", m.Source)
		}
		if err := os.MkdirAll(m.Source, 0o755); err != nil {
			return nil, ir.Errorf(pos, "check runtime.mount(host_path=...)", "cannot create mount source %s: %v", m.Source, err)
		}
	}
	return mounts, nil
}

// systemDirs are the host's own directories: mounting one read-write lets
// the environment change the host.
var systemDirs = []string{"/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/boot", "/proc", "/sys", "/dev", "/var", "/run", "/root"}

// sensitiveMount says why mounting p needs the user's consent, or "".
func sensitiveMount(p, home string) string {
	p = filepath.Clean(p)
	switch {
	case p == "/":
		return "the whole host file system"
	case filepath.Base(p) == "docker.sock":
		return "the Docker socket, which makes whoever uses it root on the host"
	case home != "" && p == home:
		return "your whole home directory"
	case home != "" && within(p, filepath.Join(home, ".ssh")):
		return "your ssh keys"
	case home != "" && within(p, home):
		return "" // the user's own files, e.g. ~/data (even when home is /root)
	case home != "" && within(home, p):
		return "a parent of your home directory, with the files of other users"
	}
	for _, d := range systemDirs {
		if within(p, d) {
			return "a system directory (" + d + ")"
		}
	}
	return ""
}

// within reports whether p is dir or below it.
func within(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

func projectMount(p *buildPlan) string { return compile.DevHome + "/" + p.project }

// containerUser is who ssh logs in as: the dev user carries the host user's
// UID, except for root, which stays root.
func containerUser() string {
	if os.Getuid() == 0 {
		return "root"
	}
	return compile.DevUser
}

// writeEnvState writes the files mounted at /run/envd: the host key (kept
// across ups, so the pin stays valid), the user's public key and the agent's
// config. It returns the host's public key and the Jupyter token, if any.
func writeEnvState(dir, authorizedKey string, p *buildPlan, name string) (hostPub ssh.PublicKey, token string, err error) {
	if err := privateDir(dir); err != nil {
		return nil, "", err
	}
	hostPub, err = ensureHostKey(filepath.Join(dir, hostKeyFile))
	if err != nil {
		return nil, "", err
	}
	if err := atomicfile.Write(filepath.Join(dir, authKeysFile), []byte(authorizedKey+"\n"), 0o600); err != nil {
		return nil, "", err
	}
	cfg, token, err := agentConfig(p, name)
	if err != nil {
		return nil, "", err
	}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, "", err
	}
	return hostPub, token, atomicfile.Write(filepath.Join(dir, agentConfFile), data, 0o600) // holds the Jupyter token
}

// agentConfig says what the agent runs: sshd, the init commands, the
// daemons and Jupyter.
func agentConfig(p *buildPlan, name string) (*agent.Config, string, error) {
	env := p.env
	cfg := &agent.Config{
		SSH: agent.SSHConfig{
			Listen:         fmt.Sprintf("0.0.0.0:%d", compile.SSHPort),
			HostKey:        runDir + "/" + hostKeyFile,
			AuthorizedKeys: runDir + "/" + authKeysFile,
			Shell:          shellPath(env.Shell),
		},
		Workdir: projectMount(p),
		LogDir:  logDir(),
		Env:     map[string]string{"ENVD_NAME": name},
		User:    devUser(),
	}
	for i, in := range env.Init {
		cfg.Init = append(cfg.Init, agent.Command{Name: fmt.Sprintf("init-%d", i+1), Command: in.Command})
	}
	for i, d := range env.Daemons {
		cfg.Services = append(cfg.Services, agent.Service{Name: daemonName(env, i, d), Command: d.Command})
	}
	token := ""
	if j := env.Jupyter; j != nil {
		token = j.Token
		if token == "" {
			b := make([]byte, 24)
			rand.Read(b)
			token = hex.EncodeToString(b)
		}
		cmd := []string{
			compile.VenvDir + "/bin/jupyter", "lab", "--ip=0.0.0.0", "--port=" + strconv.Itoa(jupyterContainerPort(env)),
			"--no-browser", "--ServerApp.root_dir=" + projectMount(p),
		}
		if cfg.User.UID == 0 {
			cmd = append(cmd, "--allow-root") // the host user is root, and so is the environment's
		}
		// Not in argv, which every user of the host can read: Jupyter takes
		// the token from its environment, which only its own user can.
		cfg.Services = append(cfg.Services, agent.Service{Name: "jupyter", Command: cmd, Env: map[string]string{"JUPYTER_TOKEN": token}})
	}
	if err := cfg.Validate(); err != nil {
		return nil, "", fmt.Errorf("agent config: %w", err)
	}
	return cfg, token, nil
}

func devUser() *agent.User {
	if os.Getuid() == 0 {
		return &agent.User{Name: "root", UID: 0, GID: 0, Home: "/root"}
	}
	return &agent.User{Name: compile.DevUser, UID: os.Getuid(), GID: os.Getgid(), Home: compile.DevHome}
}

// logDir is where the agent writes each service's log and status.json.
func logDir() string { return devUser().Home + "/.local/state/envd/logs" }

func shellPath(shell string) string {
	switch shell {
	case "zsh":
		return "/usr/bin/zsh"
	case "fish":
		return "/usr/bin/fish"
	}
	return "/bin/bash"
}

// daemonName names a daemon after the service it exposes when there is one
// ("streamlit"), else after its command.
func daemonName(env *ir.Environment, i int, d ir.Daemon) string {
	if i < len(env.Expose) && env.Expose[i].Service != "" && len(env.Daemons) == len(env.Expose) {
		return sanitizeName(env.Expose[i].Service)
	}
	return fmt.Sprintf("%s-%d", sanitizeName(filepath.Base(d.Command[0])), i+1)
}

func sanitizeName(s string) string {
	n := notNameChars.ReplaceAllString(strings.ToLower(s), "-")
	if n = strings.Trim(n, "-_."); n == "" {
		return "daemon"
	}
	return n
}

func jupyterContainerPort(env *ir.Environment) int {
	if env.Jupyter != nil && env.Jupyter.Port != 0 {
		return env.Jupyter.Port
	}
	return jupyterPort
}

// exposedPorts are runtime.expose() ports plus Jupyter's, all published on
// host (loopback unless the user says otherwise).
func exposedPorts(env *ir.Environment, host string) []runtime.Port {
	var ports []runtime.Port
	for _, x := range env.Expose {
		ip := x.ListenAddr
		if ip == "" {
			ip = host
		}
		ports = append(ports, runtime.Port{Name: x.Service, ContainerPort: x.EnvdPort, HostIP: ip, HostPort: x.HostPort})
	}
	if env.Jupyter != nil {
		ports = append(ports, runtime.Port{Name: "jupyter", ContainerPort: jupyterContainerPort(env), HostIP: host})
	}
	return ports
}

func dialAddr(p *runtime.Port) string {
	host := p.HostIP
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return host + ":" + strconv.Itoa(p.HostPort)
}

func hostPort(p *runtime.Port) string { return dialAddr(p) }

// stillRunning fails once the container exited, even if Docker's restart
// policy started it again since (restarts was its count at the start).
func stillRunning(ctx context.Context, rt runtime.Runtime, name string, restarts int) error {
	env, err := rt.Get(ctx, name)
	if err != nil {
		return err
	}
	if !env.Running || env.RestartCount > restarts {
		return errContainerExited
	}
	return nil
}

var errContainerExited = errors.New("the container exited")

// startFailure explains why ssh never answered, with the container's last
// log lines.
func startFailure(ctx context.Context, rt runtime.Runtime, name string, err error, timeout time.Duration) error {
	var tail string
	logCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if rc, lerr := rt.Logs(logCtx, name, false, 20); lerr == nil {
		b, _ := io.ReadAll(rc)
		rc.Close()
		tail = strings.TrimRight(string(b), "\n")
	}
	var msg string
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, errContainerExited):
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

// checkServices waits briefly for the daemons to start and fails when one
// cannot (a command that does not exist, one that exits at once), with the
// end of its log. Services still waiting for init commands are not waited for.
func checkServices(ctx context.Context, t sshclient.Target) error {
	c, err := sshclient.Dial(ctx, t)
	if err != nil {
		return err
	}
	defer c.Close()
	deadline := time.Now().Add(2 * time.Second)
	for {
		out, err := sshclient.Output(c, "cat "+logDir()+"/status.json 2>/dev/null")
		var st agent.Status
		if err == nil && json.Unmarshal(out, &st) == nil {
			settled := true
			for _, svc := range st.Services {
				switch svc.State {
				case agent.StateBackoff, agent.StateExited:
					logTail, _ := sshclient.Output(c, fmt.Sprintf("tail -n 10 %s/%s.log", logDir(), svc.Name))
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

// printEndpoints says how to reach a running environment.
func printEndpoints(w io.Writer, name string, env *runtime.Env) {
	fmt.Fprintf(w, "  ssh      ssh %s  (or: envd ssh %s)\n", sshconfig.Alias(name), name)
	for _, p := range env.Ports {
		if p.ContainerPort == compile.SSHPort {
			continue
		}
		fmt.Fprintf(w, "  port     %d -> %s\n", p.ContainerPort, hostPort(&p))
	}
}

// attach opens an interactive shell in the environment.
func attach(ctx context.Context, t sshclient.Target) error {
	c, err := sshclient.Dial(ctx, t)
	if err != nil {
		return err
	}
	defer c.Close()
	code, err := sshclient.Run(c, "", os.Stdin, os.Stdout, os.Stderr)
	if err != nil {
		return err
	}
	if code != 0 {
		return exitCodeError(code)
	}
	return nil
}

// exitCodeError passes a remote command's exit code through as envd's own.
type exitCodeError int

func (e exitCodeError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// ensureHostKey loads the environment's host key, creating it on first use.
// The new key is written aside and linked into place, which fails if
// another envd made one meanwhile: then that one is used, so two first ups
// never end with different keys.
func ensureHostKey(path string) (ssh.PublicKey, error) {
	for {
		data, err := os.ReadFile(path)
		if err == nil {
			signer, err := ssh.ParsePrivateKey(data)
			if err != nil {
				return nil, fmt.Errorf("host key %s: %w\n  hint: remove it; envd up makes a new one", path, err)
			}
			return signer.PublicKey(), nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		pem, pub, err := sshconfig.NewHostKey()
		if err != nil {
			return nil, err
		}
		tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
		if err != nil {
			return nil, err
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
			return pub, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, err
		}
	}
}
