package buildkitd

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	"envd.dev/envd/internal/atomicfile"
	"envd.dev/envd/internal/docker"
)

// A user who is not root cannot run buildkitd as a process (it needs root
// for its mounts), but a user in the docker group can run it as a
// privileged container, as buildx's docker-container driver does. The
// container:
//   - runs envd's own builder image (image.go), or $ENVD_BUILDER_IMAGE, any
//     image whose entrypoint is buildkitd (moby/buildkit is one);
//   - keeps its state in a named volume, so caches outlive the container;
//   - shares the host's network, so it reaches the hand-over registry, the
//     registry mirror and package indexes on 127.0.0.1 as the process does;
//   - listens on a socket in a directory of the user's (bind-mounted), and
//     gives the socket to the user: nobody else reaches it;
//   - restarts with Docker, and is recreated when its image or its
//     configuration changes (the volume stays).
//
// In a Docker on another machine (Options.Remote) the container uses no
// path of this one: its configuration is copied in before it starts, its
// socket stays inside, and envd reaches it with DialContainer (exec.go).

// imageEnv names another builder image.
const imageEnv = "ENVD_BUILDER_IMAGE"

// Paths inside the builder container.
const (
	containerRoot    = "/var/lib/buildkit"
	containerConfig  = "/etc/buildkit/buildkitd.toml"
	containerSockDir = "/run/envd-buildkit"
)

// Labels on the builder container: what it was made from, so a change is seen.
const (
	labelBuilder = "dev.envd.builder"        // the state directory it serves
	labelConfig  = "dev.envd.builder.config" // hash of its buildkitd.toml
	labelFiles   = "dev.envd.builder.image"  // its image's source (fingerprint, or $ENVD_BUILDER_IMAGE)
)

// ContainerName is the builder container (and its volume) of o:
// o.ContainerName, else one per state directory, so two users, or two test
// runs, never share one.
func ContainerName(o Options) string {
	if o.ContainerName != "" {
		return o.ContainerName
	}
	o, _ = o.withDefaults()
	sum := sha256.Sum256([]byte(o.Dir))
	return "envd-buildkitd-" + hex.EncodeToString(sum[:5])
}

func (o Options) containerDir() string { return filepath.Join(o.Dir, "container") }

// containerSocketDir is where the socket appears on this machine: in the
// state directory, or where the path fits a socket address.
func (o Options) containerSocketDir() string {
	d := filepath.Join(o.containerDir(), "run")
	if len(d+"/buildkitd.sock") <= maxSocketPath {
		return d
	}
	sum := sha256.Sum256([]byte(o.Dir))
	return filepath.Join(os.TempDir(), fmt.Sprintf("envd-%d-buildkit-%s", os.Getuid(), hex.EncodeToString(sum[:6])))
}

// ensureContainer is Ensure for a builder in a container.
func ensureContainer(ctx context.Context, o Options) (string, error) {
	dk := o.Container
	owner, where := &[2]int{os.Getuid(), os.Getgid()}, forHere
	if o.UserNamespace {
		owner = &[2]int{0, 0}
	}
	if o.Remote {
		// The socket stays in the container, where root dials it.
		owner, where = nil, forRemote
	}
	want, err := renderConfigAt(o, containerRoot, owner)
	if err != nil {
		return "", err
	}
	image := os.Getenv(imageEnv)
	source := image // what the container label records: the image asked for, or the fingerprint of envd's own
	var files []imageFile
	if image == "" {
		if files, err = o.builderFiles(where); err != nil {
			return "", err
		}
		source = fingerprint(files)
	}
	if err := o.makeContainerDirs(); err != nil {
		return "", err
	}
	unlock, err := o.lock()
	if err != nil {
		return "", err
	}
	defer unlock()

	cname := ContainerName(o)
	cfgHash := hashOf(want)
	res, err := dk.API().ContainerInspect(ctx, cname, client.ContainerInspectOptions{})
	switch {
	case err == nil && res.Container.Config.Labels[labelConfig] == cfgHash && res.Container.Config.Labels[labelFiles] == source:
		if res.Container.State == nil || !res.Container.State.Running {
			o.logf("starting the builder container %s", cname)
			if _, err := dk.API().ContainerStart(ctx, cname, client.ContainerStartOptions{}); err != nil {
				return "", fmt.Errorf("start the builder container %s: %w", cname, err)
			}
		}
		return o.containerAddr(), o.waitContainer(ctx, dk, cname)
	case err == nil:
		o.logf("recreating the builder container %s: its %s changed (its cache volume stays)", cname, whatDiffers(res.Container.Config.Labels, cfgHash, source))
		if _, err := dk.API().ContainerRemove(ctx, cname, client.ContainerRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			return "", fmt.Errorf("remove the old builder container %s: %w", cname, err)
		}
	case !cerrdefs.IsNotFound(err):
		return "", fmt.Errorf("inspect the builder container %s: %w", cname, err)
	}

	if image == "" {
		if o.Remote {
			if err := sameArch(ctx, dk); err != nil {
				return "", err
			}
		}
		if image, err = o.ensureImage(ctx, dk, files); err != nil {
			return "", err
		}
	}
	labels := map[string]string{labelConfig: cfgHash, labelFiles: source}
	if !o.Remote {
		labels[labelBuilder] = o.Dir
		if err := atomicfile.Write(o.containerConfigFile(), want, 0o644); err != nil {
			return "", fmt.Errorf("write %s: %w", o.containerConfigFile(), err)
		}
		os.Remove(filepath.Join(o.containerSocketDir(), "buildkitd.sock"))
	}
	created, err := dk.API().ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: cname,
		Config: &container.Config{
			Image:  image,
			Cmd:    []string{"--config", containerConfig, "--addr", "unix://" + containerSockDir + "/buildkitd.sock"},
			Labels: labels,
		},
		HostConfig: &container.HostConfig{
			// runc makes mounts and namespaces for every step: every
			// capability, no seccomp or AppArmor profile, an unmasked /proc.
			// Not --privileged: Docker then asks for capabilities this
			// machine may not have (a host without CAP_SYS_RESOURCE fails).
			// For Remote, this machine's set stands in for that one's,
			// which envd cannot see: what only this one lacks buildkitd
			// does without.
			CapAdd:        []string{"ALL"},
			CapDrop:       missingCaps(),
			SecurityOpt:   []string{"seccomp=unconfined", "apparmor=unconfined"},
			MaskedPaths:   []string{}, // empty, not nil: nothing masked
			ReadonlyPaths: []string{},
			NetworkMode:   "host",
			RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
			Mounts:        o.containerMounts(cname),
		},
	})
	if err != nil {
		return "", fmt.Errorf("create the builder container from %s: %w", image, err)
	}
	if o.Remote {
		if err := copyConfig(ctx, dk, created.ID, want); err != nil {
			dk.API().ContainerRemove(ctx, created.ID, client.ContainerRemoveOptions{Force: true})
			return "", fmt.Errorf("copy buildkitd.toml into the builder container %s: %w", cname, err)
		}
	}
	o.logf("starting the builder container %s (%s)", cname, image)
	if _, err := dk.API().ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		dk.API().ContainerRemove(ctx, created.ID, client.ContainerRemoveOptions{Force: true})
		return "", fmt.Errorf("start the builder container %s: %w", cname, err)
	}
	if err := o.waitContainer(ctx, dk, cname); err != nil {
		return "", err
	}
	o.logf("the builder container is ready on %s", o.containerAddr())
	return o.containerAddr(), nil
}

// containerAddr is where the daemon answers: its socket here, or, for
// Remote, a name for messages (DialContainer reaches it).
func (o Options) containerAddr() string {
	if o.Remote {
		return "docker-container://" + ContainerName(o)
	}
	return "unix://" + filepath.Join(o.containerSocketDir(), "buildkitd.sock")
}

func (o Options) containerConfigFile() string {
	return filepath.Join(o.containerDir(), "buildkitd.toml")
}

// makeContainerDirs makes the directories of this machine the container
// uses: the state directory (its lock) and, for a container here, the
// directory of its configuration and that of its socket, both the user's.
func (o Options) makeContainerDirs() error {
	if o.Remote {
		if err := os.MkdirAll(o.Dir, 0o700); err != nil {
			return fmt.Errorf("create the builder's directory: %w", err)
		}
		return nil
	}
	for _, d := range []string{o.containerDir(), o.containerSocketDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("create the builder's directory: %w", err)
		}
		if err := ownDir(d); err != nil {
			return err
		}
	}
	return nil
}

// containerMounts are the builder container's mounts: its cache volume,
// the host's cgroups and, for a container here, its configuration and its
// socket's directory.
func (o Options) containerMounts(cname string) []mount.Mount {
	ms := []mount.Mount{{Type: mount.TypeVolume, Source: cname, Target: containerRoot}}
	if !o.Remote {
		ms = append(ms,
			mount.Mount{Type: mount.TypeBind, Source: o.containerConfigFile(), Target: containerConfig, ReadOnly: true},
			mount.Mount{Type: mount.TypeBind, Source: o.containerSocketDir(), Target: containerSockDir})
	}
	// Writable, as --privileged would have it: runc puts each step in a
	// cgroup of its own. The path is the Docker host's, wherever that is.
	return append(ms, mount.Mount{Type: mount.TypeBind, Source: "/sys/fs/cgroup", Target: "/sys/fs/cgroup"})
}

// copyConfig puts buildkitd.toml into a created container, before it starts.
func copyConfig(ctx context.Context, dk *docker.Client, id string, cfg []byte) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := strings.TrimPrefix(path.Dir(containerConfig), "/") + "/"
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755, Format: tar.FormatPAX}); err != nil {
		return err
	}
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(containerConfig, "/"), Mode: 0o644, Size: int64(len(cfg)), Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if _, err := tw.Write(cfg); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	_, err := dk.API().CopyToContainer(ctx, id, client.CopyToContainerOptions{DestinationPath: "/", Content: &buf})
	return err
}

// readContainerFile reads one file of a container, running or not.
func readContainerFile(ctx context.Context, dk *docker.Client, cname, file string) ([]byte, error) {
	res, err := dk.API().CopyFromContainer(ctx, cname, client.CopyFromContainerOptions{SourcePath: file})
	if err != nil {
		return nil, err
	}
	defer res.Content.Close()
	tr := tar.NewReader(res.Content)
	for {
		hdr, err := tr.Next()
		if err != nil {
			return nil, fmt.Errorf("%s in %s: %w", file, cname, err)
		}
		if hdr.Typeflag == tar.TypeReg {
			return io.ReadAll(tr)
		}
	}
}

// remotePing bounds a ping of a remote builder: each dial there is a
// command started over the network. A daemon that is not up yet fails
// fast all the same.
const remotePing = 10 * time.Second

// pingContainer is ping for the daemon in the container.
func (o Options) pingContainer(ctx context.Context, dk *docker.Client, cname string, timeout time.Duration) (string, error) {
	if !o.Remote {
		return ping(ctx, o.containerAddr(), timeout)
	}
	return pingExec(ctx, dk, cname, max(timeout, remotePing))
}

func hashOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

func whatDiffers(labels map[string]string, cfgHash, source string) string {
	var what []string
	if labels[labelConfig] != cfgHash {
		what = append(what, "configuration")
	}
	if labels[labelFiles] != source {
		what = append(what, "image")
	}
	return strings.Join(what, " and ")
}

// ownDir refuses a directory that is not this user's: the socket in it is
// the builder, which is root on this machine.
func ownDir(d string) error {
	fi, err := os.Lstat(d)
	if err != nil {
		return err
	}
	if !fi.IsDir() || !ownedByMe(fi) {
		return &Error{Kind: ErrSocketInUse,
			Msg:  fmt.Sprintf("%s is not a directory of yours", d),
			Hint: "remove it, or give the managed builder another directory"}
	}
	return os.Chmod(d, 0o700)
}

// waitContainer polls until the daemon in the container answers, the
// container stops (its log says why), or o.StartTimeout passes.
func (o Options) waitContainer(ctx context.Context, dk *docker.Client, cname string) error {
	deadline := time.Now().Add(o.StartTimeout)
	for {
		_, pingErr := o.pingContainer(ctx, dk, cname, 2*time.Second)
		if pingErr == nil {
			return nil
		}
		res, err := dk.API().ContainerInspect(ctx, cname, client.ContainerInspectOptions{})
		if err != nil {
			return fmt.Errorf("the builder container %s: %w", cname, err)
		}
		if st := res.Container.State; st != nil && !st.Running && !st.Restarting {
			return &Error{Kind: ErrExited,
				Msg:  fmt.Sprintf("the builder container %s exited during start-up (exit code %d)", cname, st.ExitCode),
				Hint: "see its log below (`docker logs " + cname + "`); fix the cause and run envd again",
				Log:  containerLog(ctx, dk, cname)}
		}
		if time.Now().After(deadline) {
			msg := fmt.Sprintf("the builder container %s did not answer on %s within %s", cname, o.containerAddr(), o.StartTimeout)
			if o.Remote {
				msg += ": " + pingErr.Error() // how the dial failed: it is run there
			}
			return &Error{Kind: ErrTimeout,
				Msg:  msg,
				Hint: "see its log below (`docker logs " + cname + "`); a slow first start can take longer: run envd again",
				Log:  containerLog(ctx, dk, cname)}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// containerLog is the last lines of the container's output.
func containerLog(ctx context.Context, dk *docker.Client, cname string) []string {
	rc, err := dk.API().ContainerLogs(ctx, cname, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: "20"})
	if err != nil {
		return nil
	}
	defer rc.Close()
	var buf bytes.Buffer
	stdcopy.StdCopy(&buf, &buf, rc)
	return strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
}

// stopContainer is Stop for a builder in a container. The volume stays.
func stopContainer(ctx context.Context, o Options) error {
	cname := ContainerName(o)
	t := int(stopTimeout.Seconds())
	_, err := o.Container.API().ContainerStop(ctx, cname, client.ContainerStopOptions{Timeout: &t})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("stop the builder container %s: %w", cname, err)
	}
	return nil
}

// RemoveContainer removes the builder container of o and, with volume, its
// cache volume too.
func RemoveContainer(ctx context.Context, o Options, volume bool) error {
	cname := ContainerName(o)
	if _, err := o.Container.API().ContainerRemove(ctx, cname, client.ContainerRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
		return err
	}
	if volume {
		if _, err := o.Container.API().VolumeRemove(ctx, cname, client.VolumeRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
			return err
		}
	}
	return nil
}

// containerStatus is Status for a builder in a container.
func containerStatus(ctx context.Context, o Options) (State, error) {
	st := State{Addr: o.containerAddr(), Dir: o.Dir, Container: ContainerName(o)}
	// The mirror outlives the container: a recreated one keeps it.
	if !o.Remote {
		if b, err := os.ReadFile(o.containerConfigFile()); err == nil {
			st.Mirror, _ = configMirror(b)
		}
	}
	res, err := o.Container.API().ContainerInspect(ctx, st.Container, client.ContainerInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	if o.Remote {
		// Its configuration is only in the container.
		if b, err := readContainerFile(ctx, o.Container, st.Container, containerConfig); err == nil {
			st.Mirror, _ = configMirror(b)
		}
	}
	if s := res.Container.State; s != nil && s.Running {
		st.Running, st.PID = true, s.Pid
		v, err := o.pingContainer(ctx, o.Container, st.Container, 3*time.Second)
		st.Ready, st.Version = err == nil, v
	}
	return st, nil
}

func ownedByMe(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Getuid()
}

// capNames are the capabilities Docker knows, by number.
var capNames = []string{"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
	"SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
	"SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
	"SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
	"MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ"}

// missingCaps are the capabilities outside this process's bounding set,
// which Docker (started alike) cannot give a container either.
func missingCaps() []string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil
	}
	return capsNotIn(string(b))
}

func capsNotIn(status string) []string {
	for _, line := range strings.Split(status, "\n") {
		hex, ok := strings.CutPrefix(line, "CapBnd:")
		if !ok {
			continue
		}
		set, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
		if err != nil {
			return nil
		}
		var missing []string
		for i, name := range capNames {
			if set&(1<<i) == 0 {
				missing = append(missing, name)
			}
		}
		return missing
	}
	return nil
}

// sameArch refuses a Docker on another CPU architecture than this
// machine's: envd's builder image is made of this machine's binaries, and
// would fail there with "exec format error".
func sameArch(ctx context.Context, dk *docker.Client) error {
	info, err := dk.API().Info(ctx, client.InfoOptions{})
	if err != nil {
		return fmt.Errorf("asking the server's Docker its architecture: %w", err)
	}
	if there := goArch(info.Info.Architecture); there != goruntime.GOARCH {
		return &Error{Kind: ErrNotFound,
			Msg:  fmt.Sprintf("the server is %s and this machine %s: envd's builder image is made of this machine's binaries, and cannot run there", there, goruntime.GOARCH),
			Hint: "run envd from a machine of the server's architecture (or on the server itself); a builder image for other architectures is not made yet"}
	}
	return nil
}

// goArch turns Docker's (the kernel's) name of an architecture into Go's.
func goArch(machine string) string {
	switch machine {
	case "x86_64":
		return "amd64"
	case "aarch64", "arm64":
		return "arm64"
	case "armv7l":
		return "arm"
	}
	return machine // ppc64le, s390x, riscv64: the same in both

}
