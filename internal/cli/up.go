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
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/docker/go-units"
	"github.com/spf13/cobra"

	"envd.dev/envd/internal/agent"
	"envd.dev/envd/internal/builderctx"
	"envd.dev/envd/internal/compile"
	"envd.dev/envd/internal/contract"
	"envd.dev/envd/internal/envs"
	"envd.dev/envd/internal/forward"
	"envd.dev/envd/internal/ir"
	"envd.dev/envd/internal/registry"
	"envd.dev/envd/internal/runtime"
	"envd.dev/envd/internal/sshconfig"
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
	// timeoutSet: --timeout given, so it also bounds a cluster's start.
	timeoutSet bool
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
			o.timeoutSet = c.Flags().Changed("timeout")
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
	addCacheFlags(c, &o.build)
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

func runUp(ctx context.Context, s streams, o *upOptions) (err error) {
	start := time.Now()
	if o.gpus != "" && o.noGPU {
		return usageError{errors.New("--gpus and --no-gpu contradict each other")}
	}
	// What the context names decides how the image travels; the runtime
	// is reached only once the build file and flags are found good.
	c, err := selectedContext()
	if err != nil {
		return err
	}
	kube := c.RuntimeKind() == builderctx.RuntimeKubernetes
	if kube {
		o.build.push = c.Kube.Registry
	}
	if kube || c.RuntimeKind() == builderctx.RuntimeSSH {
		o.build.projectCopied = true // the runtime's Project(), checked below
	}
	o.build.userMapped = podmanMapsUser(c) // checked below too
	// up runs the image, so it is built for where it runs rather than for
	// the builder: this machine, an ssh server of its architecture (one of
	// another is refused), or a cluster, whose nodes are taken to be of
	// this machine's too (as for the builder pod envd runs there).
	host, err := hostPlatform()
	if err != nil {
		return err
	}
	o.build.platform = host.String()
	p, err := o.build.plan(ctx)
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
		return notDevError(p.env.Base)
	}
	spec, err := o.resources(s.err, p, o.build.projectCopied)
	if err != nil {
		return err
	}
	sess, err := openSession(ctx, s)
	if err != nil {
		return err
	}
	defer sess.Close()
	if copied := sess.rt.Project() == runtime.ProjectCopied; copied != o.build.projectCopied {
		// The image's dev user was planned for the other transport.
		return fmt.Errorf("internal error: the runtime's project is copied=%v, the build planned copied=%v", copied, o.build.projectCopied)
	}
	if sess.podman != nil && sess.podman.MapsHostUser() != o.build.userMapped {
		return fmt.Errorf("envd runs as UID %d, but the Podman service it reached is not this user's (rootless=%v)\n  hint: use a Podman service of your own user: a rootless one for a user, the rootful one (/run/podman/podman.sock) for root", os.Getuid(), sess.podman.MapsHostUser())
	}
	if sess.kube != nil {
		if err := sess.usePullAuth(); err != nil {
			return err
		}
	}
	spec.Name = name
	spec.User = "root" // the agent gives the dev user its UID, then drops to it
	spec.Project = runtime.Project{HostDir: p.dir, Path: contract.ProjectPath(p.project)}
	spec.Labels = map[string]string{
		runtime.LabelProjectDir: p.dir, contract.LabelProjectPath: spec.Project.Path, runtime.LabelStateDir: sess.m.StateDir(name),
	}
	if o.forwardAgent {
		spec.Labels[contract.LabelForwardAgent] = "true"
	}
	if len(p.env.Commands) > 0 {
		cmds, err := json.Marshal(p.env.Commands)
		if err != nil {
			return err
		}
		spec.Labels[contract.LabelCommands] = string(cmds)
	}
	spec.Env = map[string]string{agent.ConfigPathEnv: contract.RunPath(contract.AgentConfigFile), contract.NameEnv: name}
	spec.Ports = append([]runtime.Port{{Name: "ssh", ContainerPort: contract.SSHPort, HostIP: o.host}}, exposedPorts(p.env, o.host)...)
	if o.timeoutSet {
		spec.StartTimeout = o.timeout
	}
	listen := inContainer
	if hn, ok := sess.rt.(runtime.HostNetwork); ok && hn.SharesHostNetwork() {
		if spec.Ports, err = hostNetworkPorts(ctx, sess.rt, name, spec.Ports); err != nil {
			return err
		}
		listen = onHost(spec.Ports)
	}
	cfg, token, err := agentConfig(p, name, devUser(sess.rt), listen)
	if err != nil {
		return err
	}
	// A copied project lives in a volume of the runtime's, root's at first.
	cfg.OwnWorkdir = sess.rt.Project() == runtime.ProjectCopied

	res, err := sess.m.Up(ctx, envs.UpRequest{
		Spec:          spec,
		Build:         func(ctx context.Context) (string, error) { return buildForUp(ctx, s, o, p) },
		Agent:         cfg,
		ForwardAgent:  o.forwardAgent,
		Force:         o.force,
		Timeout:       o.timeout,
		CheckServices: len(p.env.Daemons) > 0 || p.env.Jupyter != nil,
	})
	if err != nil {
		return err
	}
	if res.AlreadyRunning {
		fmt.Fprintf(s.out, "%s is already running (use --force to recreate it)\n", name)
		printEndpoints(s.out, name, res.Env, sess.m.Forwarded(name))
		return nil
	}
	if res.Copied != "" {
		fmt.Fprintf(s.err, "envd: copied the project into %s: %s\n", name, res.Copied)
	}

	// Ports the runtime does not publish are forwarded to 127.0.0.1 here:
	// by this process while its shell runs, or by a background forwarder.
	forwards := envs.Forwards(spec, res.Env)
	var fw *forward.Forwarder
	if len(forwards) > 0 && o.detach {
		st, err := sess.m.StartForwarder(name, forwards)
		if err != nil {
			return fmt.Errorf("forwarding %s's ports: %w", name, err)
		}
		forwards = st.Forwards
	} else if len(forwards) > 0 {
		if fw, err = forward.Listen(forwards, sess.m.Dialer(name), func(format string, args ...any) {
			fmt.Fprintf(s.err, "envd: "+format+"\n", args...)
		}); err != nil {
			return err
		}
		defer fw.Close()
		go fw.Serve(ctx)
		forwards = fw.Forwards()
	}
	fmt.Fprintf(s.out, "%s is ready in %.1fs\n", name, time.Since(start).Seconds())
	printEndpoints(s.out, name, res.Env, forwards)
	if token != "" {
		if addr := serviceAddr(res.Env, forwards, jupyterContainerPort(p.env)); addr != "" {
			fmt.Fprintf(s.out, "  jupyter  http://%s/lab?token=%s\n", addr, token)
		}
	}
	if o.detach {
		return nil
	}
	if fw != nil {
		fmt.Fprintf(s.err, "envd: the ports stay forwarded while this shell runs (envd up -d forwards them in the background)\n")
	}
	return runOn(ctx, res.Target, "") // the shell
}

// serviceAddr is where a port of the environment is reached here:
// published by the runtime, or forwarded by envd; "" neither.
func serviceAddr(env *runtime.Env, forwards []forward.Forward, port int) string {
	if p := env.Port(port); p != nil && p.HostPort != 0 {
		return hostPort(p)
	}
	for _, f := range forwards {
		if f.RemotePort == port {
			return f.LocalAddr
		}
	}
	return ""
}

// buildForUp builds the image (or finds it up to date) and returns what the
// runtime runs: the tag in Docker, or the pushed image by digest.
func buildForUp(ctx context.Context, s streams, o *upOptions, p *buildPlan) (string, error) {
	res, err := buildPlanned(ctx, s, &o.build, p)
	if err != nil {
		return "", err
	}
	shown := p.tag
	if p.export.Push {
		shown = p.export.Name
	}
	if res.Skipped {
		fmt.Fprintf(s.err, "envd: %s is up to date, not rebuilt\n", shown)
	} else {
		fmt.Fprintf(s.err, "envd: built %s, %d of %d steps cached\n", shown, res.Cached, res.Steps)
	}
	if !p.export.Push {
		return p.tag, nil
	}
	return registry.ByDigest(p.export.Name, res.Digest)
}

// resources turns the resource flags and mounts into a Spec, and says on w
// which host paths it mounts.
func (o *upOptions) resources(w io.Writer, p *buildPlan, copied bool) (runtime.Spec, error) {
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
	if copied {
		fmt.Fprintf(w, "envd: the project %s is copied to %s when the environment is first made; envd sync moves changes either way\n", p.dir, contract.ProjectPath(p.project))
	} else {
		fmt.Fprintf(w, "envd: mounting %s at %s (the project directory)\n", p.dir, contract.ProjectPath(p.project))
	}
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

// agentConfig says what the agent runs: sshd, the init commands, the
// daemons and Jupyter.
func agentConfig(p *buildPlan, name string, user *agent.User, listen listenFunc) (*agent.Config, string, error) {
	env := p.env
	cfg := &agent.Config{
		SSH: agent.SSHConfig{
			Listen:         listen.addr(contract.SSHPort),
			HostKey:        contract.RunPath(contract.HostKeyFile),
			AuthorizedKeys: contract.RunPath(contract.AuthorizedKeysFile),
			Shell:          shellPath(env.Shell),
		},
		Workdir: contract.ProjectPath(p.project),
		LogDir:  logDir(user),
		Env:     map[string]string{contract.NameEnv: name},
		User:    user,
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
		ip, port := listen(jupyterContainerPort(env))
		cmd := []string{
			compile.VenvDir + "/bin/jupyter", "lab", "--ip=" + ip, "--port=" + strconv.Itoa(port),
			"--no-browser", "--ServerApp.root_dir=" + contract.ProjectPath(p.project),
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

// devUser is who the environment runs as. Where the project is shared
// with this machine, the dev user gets the host user's UID (root stays
// root), so files keep their owner; elsewhere it keeps the image's UID and
// the agent gives it the copied project's volume.
func devUser(rt runtime.Runtime) *agent.User {
	mapper, _ := rt.(interface{ MapsHostUser() bool })
	switch {
	case rt.Project() == runtime.ProjectCopied, mapper != nil && mapper.MapsHostUser():
		return &agent.User{Name: contract.DevUser, UID: contract.DevUID, GID: contract.DevUID, Home: contract.DevHome}
	case os.Getuid() == 0:
		return &agent.User{Name: "root", UID: 0, GID: 0, Home: "/root"}
	}
	return &agent.User{Name: contract.DevUser, UID: os.Getuid(), GID: os.Getgid(), Home: contract.DevHome}
}

// logDir is where the agent writes each service's log and status.json.
func logDir(u *agent.User) string { return u.Home + "/.local/state/envd/logs" }

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

// jupyterContainerPort is where Jupyter listens inside; config.jupyter's
// port is the one on this machine.
func jupyterContainerPort(*ir.Environment) int { return contract.JupyterPort }

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
		ports = append(ports, runtime.Port{Name: "jupyter", ContainerPort: jupyterContainerPort(env), HostIP: host, HostPort: env.Jupyter.Port})
	}
	return ports
}

// hostPort is where a published port is reached on this machine.
func hostPort(p *runtime.Port) string {
	host := p.HostIP
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, strconv.Itoa(p.HostPort))
}

// printEndpoints says how to reach a running environment.
func printEndpoints(w io.Writer, name string, env *runtime.Env, forwards []forward.Forward) {
	fmt.Fprintf(w, "  ssh      ssh %s  (or: envd ssh %s)\n", sshconfig.Alias(name), name)
	for _, p := range env.Ports {
		if p.ContainerPort == contract.SSHPort || p.HostPort == 0 {
			continue
		}
		fmt.Fprintf(w, "  port     %d -> %s\n", p.ContainerPort, hostPort(&p))
	}
	for _, f := range forwards {
		fmt.Fprintf(w, "  port     %d -> %s (forwarded)\n", f.RemotePort, f.LocalAddr)
	}
}

// exitCodeError passes a remote command's exit code through as envd's own.
type exitCodeError int

func (e exitCodeError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// notDevError says why envd up cannot run an image without dev, at the
// base() call or, when the build function has none, at the function.
func notDevError(b ir.Base) error {
	const msg = "envd up needs a dev environment (one with envd's agent)"
	switch {
	case b.Implicit:
		return ir.Errorf(b.Pos, `add base(dev=True) to it, or base(os="ubuntu22.04", language="python3")`,
			"%s, but this build function never calls base(), so its base is %s without dev (no base() means base(), as in the original envd)", msg, b.Image)
	case b.OS != "":
		return ir.Errorf(b.Pos, "remove dev=False", "%s, but this base() says dev=False", msg)
	}
	return ir.Errorf(b.Pos, `pass dev=True, as in base(dev=True) or base(image="...", dev=True), or use base(os="ubuntu22.04", language="python3")`,
		"%s, but this base() has dev=False: base() and base(image=...) default to it, as in the original envd", msg)
}
