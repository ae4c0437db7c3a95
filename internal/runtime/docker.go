package runtime

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"envd.dev/envd/internal/atomicfile"
	"envd.dev/envd/internal/contract"
)

// stopTimeout is Docker's grace period: the agent stops its services within it.
const stopTimeout = 10

// Docker runs environments as containers of the local Docker Engine. The
// project and runtime.mount directories are bind mounts; an environment's
// secrets are files in its state dir on this machine, bind-mounted
// read-only at contract.RunDir.
type Docker struct {
	api       *client.Client
	stateRoot string
	// remote is set when the daemon is a server's (remote.go), podman
	// when it is the user's Podman (podman.go).
	remote *remote
	podman *podmanMode
}

// NewDocker wraps a connected client (see internal/docker.Connect);
// stateRoot holds one state dir per environment, named after it.
func NewDocker(api *client.Client, stateRoot string) *Docker {
	return &Docker{api: api, stateRoot: stateRoot}
}

func (d *Docker) Kind() string              { return "docker" }
func (d *Docker) Delivery() Delivery        { return DeliverLocal }
func (d *Docker) Project() ProjectTransport { return ProjectShared }

// StateDir is where an environment's secrets are kept on this machine.
func (d *Docker) StateDir(name string) string { return filepath.Join(d.stateRoot, name) }

// writeSecrets puts the spec's secrets in its state dir (0700, files 0600).
func (d *Docker) writeSecrets(s Spec) error {
	dir := d.StateDir(s.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(s.Secrets)) {
		if err := atomicfile.Write(filepath.Join(dir, name), s.Secrets[name], 0o600); err != nil {
			return err
		}
	}
	return nil
}

// Dial connects to a port of the container through where it is published.
func (d *Docker) Dial(ctx context.Context, name string, port int) (net.Conn, error) {
	env, err := d.inspect(ctx, name)
	if err != nil {
		return nil, err
	}
	p := env.Port(port)
	if !env.Running || p == nil {
		return nil, fmt.Errorf("%s is not running, or does not publish port %d (%s)", name, port, env.Status)
	}
	host := p.HostIP
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	addr := net.JoinHostPort(host, strconv.Itoa(p.HostPort))
	if d.remote != nil {
		return d.remote.dial(ctx, addr)
	}
	var dialer net.Dialer
	return dialer.DialContext(ctx, "tcp", addr)
}

// ContainerName is the Docker name of an environment's container.
func ContainerName(name string) string { return "envd-" + name }

// containerConfig turns a Spec into Docker's create options. It is pure, so
// what `envd up` asks of Docker (GPUs, ports, limits) is unit-tested.
func containerConfig(s Spec, stateDir string) (client.ContainerCreateOptions, error) {
	cfg := &container.Config{
		Image:        s.Image,
		User:         s.User,
		Labels:       map[string]string{LabelName: s.Name},
		ExposedPorts: network.PortSet{},
	}
	for k, v := range s.Labels {
		cfg.Labels[k] = v
	}
	keys := make([]string, 0, len(s.Env))
	for k := range s.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		cfg.Env = append(cfg.Env, k+"="+s.Env[k])
	}
	host := &container.HostConfig{
		PortBindings: network.PortMap{},
		ShmSize:      s.ShmSize,
		// Back by itself after a Docker restart or a crash; not after a stop.
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
	}
	mounts := append([]Mount{
		{Source: s.Project.HostDir, Target: s.Project.Path},
		{Source: stateDir, Target: contract.RunDir, ReadOnly: true},
	}, s.Mounts...)
	if stateDir == "" {
		// Nothing of this machine: the project is copied into a volume of
		// the daemon's, the secrets into the container (remote.go).
		mounts = nil
		host.Mounts = []mount.Mount{{Type: mount.TypeVolume, Source: ProjectVolume(s.Name), Target: s.Project.Path,
			VolumeOptions: &mount.VolumeOptions{Labels: map[string]string{LabelName: s.Name}}}}
	}
	for _, m := range mounts {
		bind := m.Source + ":" + m.Target
		if m.ReadOnly {
			bind += ":ro"
		}
		host.Binds = append(host.Binds, bind)
	}
	for _, p := range s.Ports {
		port, err := network.ParsePort(fmt.Sprintf("%d/tcp", p.ContainerPort))
		if err != nil {
			return client.ContainerCreateOptions{}, err
		}
		ip, err := netip.ParseAddr(orDefault(p.HostIP, "127.0.0.1"))
		if err != nil {
			return client.ContainerCreateOptions{}, fmt.Errorf("port %s: bad address %q", p.Name, p.HostIP)
		}
		cfg.ExposedPorts[port] = struct{}{}
		hostPort := ""
		if p.HostPort != 0 {
			hostPort = strconv.Itoa(p.HostPort)
		}
		host.PortBindings[port] = append(host.PortBindings[port], network.PortBinding{HostIP: ip, HostPort: hostPort})
	}
	host.Resources.NanoCPUs = int64(s.CPUs * 1e9)
	host.Resources.Memory = s.Memory
	if s.GPUs != "" {
		count := -1 // all
		if s.GPUs != "all" {
			n, err := strconv.Atoi(s.GPUs)
			if err != nil || n < 1 {
				return client.ContainerCreateOptions{}, fmt.Errorf("--gpus %q: give a number of GPUs or all", s.GPUs)
			}
			count = n
		}
		host.Resources.DeviceRequests = []container.DeviceRequest{{Driver: "nvidia", Count: count, Capabilities: [][]string{{"gpu"}}}}
	}
	return client.ContainerCreateOptions{Name: ContainerName(s.Name), Config: cfg, HostConfig: host}, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Start creates and starts the container; on any failure it is removed.
// Ports left to the runtime (HostPort 0) are chosen here rather than by
// Docker, which would pick new ones at every restart: the ssh entry and
// the URLs envd printed stay valid after a Docker restart.
func (d *Docker) Start(ctx context.Context, s Spec) (*Env, error) {
	digest := SpecDigest(s)
	for attempt := 1; ; attempt++ {
		pinned, err := d.pinPorts(s)
		if err != nil {
			return nil, err
		}
		env, err := d.start(ctx, pinned, digest)
		var inUse *PortInUseError
		if errors.As(err, &inUse) && attempt < 3 && ctx.Err() == nil && !portRequested(s, err) {
			continue // another program took a port we picked, in between
		}
		return env, err
	}
}

func (d *Docker) start(ctx context.Context, s Spec, digest string) (*Env, error) {
	stateDir := d.StateDir(s.Name)
	if d.remote != nil {
		stateDir = "" // the secrets are copied in; the project is a volume
	}
	opts, err := containerConfig(s, stateDir)
	if err != nil {
		return nil, err
	}
	if d.podman != nil {
		if err := d.podman.adapt(&opts, s); err != nil {
			return nil, err
		}
	}
	if d.remote == nil {
		if err := d.writeSecrets(s); err != nil {
			return nil, err
		}
	}
	opts.Config.Labels[LabelSpec] = digest
	created, err := d.api.ContainerCreate(ctx, opts)
	if err != nil {
		if ctx.Err() != nil && !cerrdefs.IsConflict(err) {
			d.removeIfOurs(opts.Name, digest) // Docker may have made it after all
			return nil, ctx.Err()
		}
		if cerrdefs.IsConflict(err) {
			// Not another envd up of this user's: that one holds the lock.
			return nil, fmt.Errorf("a container named %s was created meanwhile by another program (or another user's envd): %v\n  hint: docker ps -a --filter name=%s shows it; choose another --name", opts.Name, err, opts.Name)
		}
		return nil, fmt.Errorf("creating the container: %w", err)
	}
	if d.remote != nil {
		if err := d.copySecrets(ctx, created.ID, s); err != nil {
			d.forceRemove(created.ID)
			return nil, err
		}
	}
	if _, err := d.api.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		d.forceRemove(created.ID)
		return nil, d.startError(err, s)
	}
	return d.Get(ctx, s.Name)
}

// SpecDigest identifies what a Spec asks for (before envd picks ports).
func SpecDigest(s Spec) string {
	// Who made it is not what it is: an environment of an older envd, made
	// without the owner, is still resumed as it was.
	if _, ok := s.Labels[contract.LabelOwner]; ok {
		s.Labels = maps.Clone(s.Labels)
		delete(s.Labels, contract.LabelOwner)
	}
	b, _ := json.Marshal(s) // maps marshal with sorted keys
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// pinPorts gives every port without a HostPort a free one on its address.
// A server's Docker picks them itself: envd cannot see which are free
// there, and only reaches them through ssh (Dial asks where they are).
func (d *Docker) pinPorts(s Spec) (Spec, error) {
	if d.remote != nil {
		return s, nil
	}
	return pinPorts(s)
}

func pinPorts(s Spec) (Spec, error) {
	s.Ports = slices.Clone(s.Ports)
	for i, p := range s.Ports {
		if p.HostPort != 0 {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort(orDefault(p.HostIP, "127.0.0.1"), "0"))
		if err != nil {
			return s, fmt.Errorf("finding a free port for %s on %s: %w", p.Name, orDefault(p.HostIP, "127.0.0.1"), err)
		}
		s.Ports[i].HostPort = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	return s, nil
}

// portRequested: the port Docker could not bind is one the user asked for.
func portRequested(s Spec, err error) bool {
	for _, p := range s.Ports {
		if p.HostPort != 0 && strings.Contains(err.Error(), ":"+strconv.Itoa(p.HostPort)) {
			return true
		}
	}
	return false
}

// Resume starts the stopped container again: same files, same ports, the
// secrets of s.
func (d *Docker) Resume(ctx context.Context, s Spec) (_ *Env, err error) {
	name := s.Name
	if d.remote != nil {
		err = d.copySecrets(ctx, ContainerName(name), s)
	} else {
		err = d.writeSecrets(s)
	}
	if err != nil {
		return nil, err
	}
	if _, err := d.api.ContainerStart(ctx, ContainerName(name), client.ContainerStartOptions{}); err != nil {
		if cerrdefs.IsNotFound(err) {
			return nil, ErrNotFound
		}
		// Its ports, so that a port taken meanwhile is named.
		s := Spec{}
		if res, ierr := d.api.ContainerInspect(ctx, ContainerName(name), client.ContainerInspectOptions{}); ierr == nil && res.Container.HostConfig != nil {
			for _, binds := range res.Container.HostConfig.PortBindings {
				for _, b := range binds {
					hp, _ := strconv.Atoi(b.HostPort)
					s.Ports = append(s.Ports, Port{HostIP: b.HostIP.String(), HostPort: hp})
				}
			}
		}
		return nil, d.startError(err, s)
	}
	return d.Get(ctx, name)
}

// Stop stops the container within the grace period and keeps it.
func (d *Docker) Stop(ctx context.Context, name string) error {
	t := stopTimeout
	if _, err := d.api.ContainerStop(ctx, ContainerName(name), client.ContainerStopOptions{Timeout: &t}); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("stopping %s: %w", name, err)
	}
	return nil
}

// Changes is what docker diff shows: the container's own layer.
func (d *Docker) Changes(ctx context.Context, name string) ([]Change, error) {
	res, err := d.api.ContainerDiff(ctx, ContainerName(name), client.ContainerDiffOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing what %s changed: %w", name, err)
	}
	out := make([]Change, 0, len(res.Changes))
	for _, c := range res.Changes {
		out = append(out, Change{Path: c.Path, Kind: c.Kind.String()})
	}
	return out, nil
}

// Differs compares old with what s asks for: the image it runs, and the
// digest of the spec it was made from (containers of older envds carry
// none: they are resumed).
func (d *Docker) Differs(ctx context.Context, old *Env, s Spec) (string, error) {
	img, err := d.api.ImageInspect(ctx, s.Image)
	if err != nil {
		return "", fmt.Errorf("image %s: %w", s.Image, err)
	}
	switch {
	case old.ImageID != img.ID:
		return "its image was rebuilt", nil
	case old.Labels[LabelSpec] != "" && old.Labels[LabelSpec] != SpecDigest(s):
		return "it was made with other options (mounts, ports, resources)", nil
	}
	return "", nil
}

func (d *Docker) CopyOutHint(name string) string {
	return d.dockerCommand() + " cp " + ContainerName(name) + ":PATH ."
}

func (d *Docker) StartHint(name string) string {
	return d.dockerCommand() + " start " + ContainerName(name)
}

// dockerCommand is how the user runs docker against this daemon.
func (d *Docker) dockerCommand() string {
	if d.remote != nil {
		return "docker -H " + d.remote.host
	}
	return "docker"
}

// startError names the usual causes of a failed start.
func (d *Docker) startError(err error, s Spec) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "port is already allocated"), strings.Contains(msg, "address already in use"):
		addr := ""
		for _, p := range s.Ports {
			if p.HostPort != 0 && strings.Contains(msg, ":"+strconv.Itoa(p.HostPort)) {
				addr = orDefault(p.HostIP, "127.0.0.1") + ":" + strconv.Itoa(p.HostPort)
			}
		}
		return &PortInUseError{Addr: addr, Err: err}
	case strings.Contains(msg, "could not select device driver"), strings.Contains(msg, "nvidia-container"), strings.Contains(msg, "nvidia.com/gpu"):
		return &NoGPURuntimeError{Podman: d.podman != nil, Err: err}
	}
	return fmt.Errorf("starting the container: %w", err)
}

func (d *Docker) forceRemove(id string) {
	// Cleanup must happen even when the caller's context was cancelled.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d.api.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true})
}

// removeIfOurs removes the container named cname if it is the one made from
// the spec digest: cleanup after an interrupted create.
func (d *Docker) removeIfOurs(cname, digest string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := d.api.ContainerInspect(ctx, cname, client.ContainerInspectOptions{})
	if err == nil && res.Container.Config != nil && res.Container.Config.Labels[LabelSpec] == digest {
		d.api.ContainerRemove(ctx, res.Container.ID, client.ContainerRemoveOptions{Force: true})
	}
}

// Get inspects the environment's container. A server's published ports
// are on its loopback, not this machine's: they are reported as not
// published, so envd forwards them here.
func (d *Docker) Get(ctx context.Context, name string) (*Env, error) {
	e, err := d.inspect(ctx, name)
	if err == nil && d.remote != nil {
		hidePorts(e)
	}
	return e, err
}

// inspect is Get with the ports where the daemon publishes them.
func (d *Docker) inspect(ctx context.Context, name string) (*Env, error) {
	res, err := d.api.ContainerInspect(ctx, ContainerName(name), client.ContainerInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	c := res.Container
	if c.Config == nil || c.Config.Labels[LabelName] != name {
		return nil, fmt.Errorf("container %s was not made by envd\n  hint: choose another --name, or remove that container yourself", ContainerName(name))
	}
	e := &Env{Name: name, ID: c.ID, Image: d.imageName(c.Config.Image), Labels: c.Config.Labels, ProjectDir: c.Config.Labels[LabelProjectDir]}
	e.ImageID, e.RestartCount = c.Image, c.RestartCount
	if c.State != nil {
		e.Status, e.Running = string(c.State.Status), c.State.Running && !c.State.Restarting
	}
	e.Created, _ = time.Parse(time.RFC3339Nano, c.Created)
	if _, ok := c.Config.Labels[contract.LabelPorts]; ok {
		e.Ports = labelledPorts(c.Config.Labels)
	} else if c.NetworkSettings != nil {
		for port, binds := range c.NetworkSettings.Ports {
			for _, b := range binds {
				hp, _ := strconv.Atoi(b.HostPort)
				e.Ports = append(e.Ports, Port{ContainerPort: int(port.Num()), HostIP: b.HostIP.String(), HostPort: hp})
			}
		}
	}
	sortPorts(e.Ports)
	return e, nil
}

func sortPorts(ps []Port) {
	sort.Slice(ps, func(i, j int) bool { return ps[i].ContainerPort < ps[j].ContainerPort })
}

// List returns every environment, running or not.
func (d *Docker) List(ctx context.Context) ([]Env, error) {
	res, err := d.api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("label", LabelName)})
	if err != nil {
		return nil, err
	}
	var out []Env
	for _, c := range res.Items {
		e := Env{
			Name: c.Labels[LabelName], ID: c.ID, Image: d.imageName(c.Image), Status: c.Status,
			Running: c.State == container.StateRunning, Created: time.Unix(c.Created, 0),
			Labels: c.Labels, ProjectDir: c.Labels[LabelProjectDir],
		}
		for _, p := range c.Ports {
			if p.PublicPort != 0 {
				e.Ports = append(e.Ports, Port{ContainerPort: int(p.PrivatePort), HostIP: p.IP.String(), HostPort: int(p.PublicPort)})
			}
		}
		if _, ok := c.Labels[contract.LabelPorts]; ok {
			e.Ports = labelledPorts(c.Labels)
		}
		sortPorts(e.Ports)
		if d.remote != nil {
			hidePorts(&e)
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Remove stops the container within the grace period and removes it.
func (d *Docker) Remove(ctx context.Context, name string) error {
	if _, err := d.Get(ctx, name); err != nil {
		return err
	}
	t := stopTimeout
	if _, err := d.api.ContainerStop(ctx, ContainerName(name), client.ContainerStopOptions{Timeout: &t}); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("stopping %s: %w", name, err)
	}
	_, err := d.api.ContainerRemove(ctx, ContainerName(name), client.ContainerRemoveOptions{Force: true})
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	return err
}

// Logs returns the container's output, demultiplexed.
func (d *Docker) Logs(ctx context.Context, name string, follow bool, tail int) (io.ReadCloser, error) {
	opts := client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Follow: follow}
	if tail > 0 {
		opts.Tail = strconv.Itoa(tail)
	}
	rc, err := d.api.ContainerLogs(ctx, ContainerName(name), opts)
	if cerrdefs.IsNotFound(err) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	go func() {
		_, err := stdcopy.StdCopy(pw, pw, rc)
		rc.Close()
		pw.CloseWithError(err)
	}()
	return pr, nil
}
