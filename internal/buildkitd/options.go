// Package buildkitd runs the envd-managed local buildkitd, the builder envd
// uses when no other is configured. It starts the daemon on first use, keeps
// it running after envd exits, and reuses it next time. It never writes to
// the terminal: progress goes to Options.Logf.
//
// Everything lives in one state directory (default $XDG_DATA_HOME/envd/buildkit):
// buildkitd.toml, root/, buildkitd.sock, buildkitd.log, buildkitd.pid and
// buildkitd.lock (held while starting or stopping, so two envd processes never
// start two daemons).
package buildkitd

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"envd.dev/envd/internal/docker"
	"envd.dev/envd/internal/xdg"
)

// Options selects the managed daemon and how it is configured.
type Options struct {
	// Dir is the state directory; default xdg.DataDir()/buildkit.
	Dir string
	// Binary is the buildkitd executable; default $ENVD_BUILDKITD, else
	// "buildkitd" beside the running envd, else envd itself (see binary).
	Binary string
	// Mirror is a docker.io registry mirror: "HOST:PORT" (plain HTTP),
	// "http://HOST:PORT" or "https://HOST[:PORT]"; "" = none.
	Mirror string
	// StartTimeout bounds the wait for a starting daemon to answer; default 30s.
	StartTimeout time.Duration
	// Logf, if set, receives progress notes ("starting buildkitd (pid N)").
	Logf func(format string, args ...any)
	// Container, when set, runs the daemon as a container in that Docker
	// (or Docker-compatible engine) rather than as a process: the way for a
	// user who is not root (container.go).
	Container *docker.Client
	// Remote, with Container: that Docker is not on this machine, so the
	// container uses none of this machine's paths. Its configuration is
	// copied in, and it is reached through DialContainer.
	Remote bool
	// ContainerName names the builder container and its volume; default
	// ContainerName(o), made from Dir. A remote builder needs a name of its
	// own: a local directory means nothing on that machine.
	ContainerName string
	// UserNamespace, with Container: the engine runs containers in a user
	// namespace where its root is this user (rootless Podman), so the
	// socket goes to root there to be this user's here.
	UserNamespace bool
}

const (
	defaultStartTimeout = 30 * time.Second
	stopTimeout         = 10 * time.Second
	// maxSocketPath is sun_path (108 bytes) minus the terminating NUL.
	maxSocketPath = 107
)

// sys holds the lookups the pre-start checks use, so tests can simulate a
// machine without runc, without root, or without buildkitd.
var sys = struct {
	lookPath   func(string) (string, error)
	geteuid    func() int
	executable func() (string, error)
}{exec.LookPath, os.Geteuid, os.Executable}

func (o Options) withDefaults() (Options, error) {
	// A remote builder's name cannot come from Dir: a local directory
	// names nothing there.
	if o.Remote && (o.Container == nil || o.ContainerName == "") {
		return o, errors.New("buildkitd: Options.Remote needs Container (the Docker to run in) and ContainerName")
	}
	if o.Dir == "" {
		o.Dir = filepath.Join(xdg.DataDir(), "buildkit")
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return o, err
	}
	o.Dir = dir
	if o.StartTimeout <= 0 {
		o.StartTimeout = defaultStartTimeout
	}
	return o, nil
}

func (o Options) logf(format string, args ...any) {
	if o.Logf != nil {
		o.Logf(format, args...)
	}
}

func (o Options) configPath() string { return filepath.Join(o.Dir, "buildkitd.toml") }
func (o Options) rootDir() string    { return filepath.Join(o.Dir, "root") }
func (o Options) logPath() string    { return filepath.Join(o.Dir, "buildkitd.log") }
func (o Options) pidPath() string    { return filepath.Join(o.Dir, "buildkitd.pid") }
func (o Options) lockPath() string   { return filepath.Join(o.Dir, "buildkitd.lock") }

// socketPath is DIR/buildkitd.sock when that fits in a unix socket address.
// A longer DIR (deep home directories exist) gets a socket in /run named by a
// hash of DIR: deterministic, so nothing needs recording, and /run is cleared
// at boot exactly when the daemon is gone anyway. The managed daemon runs as
// root, so /run is writable.
func (o Options) socketPath() string {
	p := filepath.Join(o.Dir, "buildkitd.sock")
	if len(p) <= maxSocketPath {
		return p
	}
	sum := sha256.Sum256([]byte(o.Dir))
	return "/run/envd-buildkitd-" + hex.EncodeToString(sum[:6]) + ".sock"
}

// Addr is the address clients use to reach the managed daemon of o.
func (o Options) Addr() string { return "unix://" + o.socketPath() }

// daemonName is the name envd answers to as BuildKit's daemon
// (internal/multicall, internal/bkdaemon).
const daemonName = "buildkitd"

// binary finds the buildkitd executable (see Options.Binary). With none
// named and none beside it, envd is its own: run under daemonName it is
// BuildKit's daemon, of the very version its client speaks. (A buildkitd
// on PATH is not taken: it may be any version, from anywhere.)
func (o Options) binary() (string, error) {
	notFound := func(msg string) error {
		return &Error{Kind: ErrNotFound, Msg: msg,
			Hint: "unset ENVD_BUILDKITD to use envd's own, or point it at a buildkitd executable"}
	}
	if o.Binary != "" {
		if !isExecutable(o.Binary) {
			return "", notFound(fmt.Sprintf("buildkitd not found: %s is not an executable file", o.Binary))
		}
		return o.Binary, nil
	}
	if p := os.Getenv("ENVD_BUILDKITD"); p != "" {
		if !isExecutable(p) {
			return "", notFound(fmt.Sprintf("buildkitd not found: ENVD_BUILDKITD=%s is not an executable file", p))
		}
		return p, nil
	}
	exe, err := sys.executable()
	if err != nil {
		return "", notFound(fmt.Sprintf("buildkitd not found: envd cannot find its own executable (%v)", err))
	}
	if p := filepath.Join(filepath.Dir(exe), "buildkitd"); isExecutable(p) {
		return p, nil
	}
	return exe, nil
}

// isSelf reports whether bin is this envd, which must then be started
// under daemonName to be buildkitd.
func isSelf(bin string) bool {
	exe, err := sys.executable()
	return err == nil && exe == bin
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// preflight checks what the managed daemon needs before anything is started
// or stopped, and returns the buildkitd binary to run.
func (o Options) preflight() (string, error) {
	if sys.geteuid() != 0 {
		return "", &Error{Kind: ErrNotRoot,
			Msg:  "the managed builder runs as root, and envd is not running as root",
			Hint: "run envd as root, or point envd at a builder you run yourself with `envd context create --builder unix:///path`"}
	}
	if _, err := sys.lookPath("runc"); err != nil {
		return "", &Error{Kind: ErrNoRunc,
			Msg:  "the managed builder needs runc, and runc is not on PATH",
			Hint: "apt-get install -y runc"}
	}
	return o.binary()
}
