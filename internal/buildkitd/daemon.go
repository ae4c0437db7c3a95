package buildkitd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"envd.dev/envd/internal/atomicfile"
	"envd.dev/envd/internal/logtail"

	"github.com/moby/buildkit/client"
)

// Ensure makes sure the managed buildkitd of o is running and answering, and
// returns its address ("unix://DIR/buildkitd.sock", see Options.Addr for a
// long DIR; "docker-container://NAME" for Remote, which only DialContainer
// reaches). A running daemon is
// reused; one started with a different configuration (e.g. another mirror)
// is restarted, which is reported through o.Logf.
func Ensure(ctx context.Context, o Options) (string, error) {
	o, err := o.withDefaults()
	if err != nil {
		return "", err
	}
	if o.Container != nil {
		return ensureContainer(ctx, o)
	}
	want, err := renderConfig(o)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return "", fmt.Errorf("create the managed builder's directory: %w", err)
	}
	unlock, err := o.lock()
	if err != nil {
		return "", err
	}
	defer unlock()

	if pid, ok := o.managedPID(); ok {
		have, _ := os.ReadFile(o.configPath())
		if bytes.Equal(have, want) {
			// It may still be starting (another envd just launched it).
			if err := o.waitReady(ctx, pid, nil, 0); err != nil {
				var e *Error
				if errors.As(err, &e) && e.Kind == ErrTimeout {
					e.Hint = fmt.Sprintf("it may be stuck: stop it (kill %d) and run envd again; its log is %s", pid, o.logPath())
				}
				return "", err
			}
			return o.Addr(), nil
		}
		// Check before stopping: never leave the user with no builder
		// because the new one cannot start.
		if _, err := o.preflight(); err != nil {
			return "", err
		}
		o.logf("restarting buildkitd (pid %d): %s", pid, whatChanged(have, want))
		if err := o.stop(pid); err != nil {
			return "", err
		}
	}
	bin, err := o.preflight()
	if err != nil {
		return "", err
	}
	if err := o.clearSocket(); err != nil {
		return "", err
	}
	// No managed buildkitd runs now: whatever is mounted below its root is
	// left from one that died, and would pile up with every such death.
	if err := o.cleanMounts(); err != nil {
		return "", err
	}
	if err := atomicfile.Write(o.configPath(), want, 0o644); err != nil {
		return "", fmt.Errorf("write %s: %w", o.configPath(), err)
	}
	if err := o.start(ctx, bin); err != nil {
		return "", err
	}
	return o.Addr(), nil
}

// whatChanged says why a running daemon's config is not the wanted one.
func whatChanged(have, want []byte) string {
	was, _ := configMirror(have)
	now, _ := configMirror(want)
	if was == now {
		return "its configuration changed"
	}
	if was == "" {
		was = "none"
	}
	if now == "" {
		now = "none"
	}
	return fmt.Sprintf("registry mirror changed from %s to %s", was, now)
}

// start launches buildkitd detached from envd (own session, no terminal,
// output to buildkitd.log) so that it outlives this process, then waits for
// it to answer.
func (o Options) start(ctx context.Context, bin string) error {
	logFile, err := os.OpenFile(o.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	offset, _ := logFile.Seek(0, io.SeekEnd)

	cmd := exec.Command(bin,
		"--config", o.configPath(),
		"--root", o.rootDir(),
		"--addr", o.Addr())
	if isSelf(bin) {
		cmd.Args[0] = daemonName
	}
	cmd.Stdout = logFile // an *os.File is handed over as is: no copying goroutine
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	// Its temporary mounts (a tmpfs per secret a step mounts) go below its
	// root, where cleanMounts finds them if it is killed, not in /tmp.
	tmp := filepath.Join(o.rootDir(), "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return err
	}
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	pid := cmd.Process.Pid
	// Reap it if it exits while envd still runs (otherwise it lingers as a
	// zombie); after envd exits, init adopts it.
	exited := make(chan struct{})
	var waitErr error // set before exited closes
	go func() { waitErr = cmd.Wait(); close(exited) }()

	if err := atomicfile.Write(o.pidPath(), []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		cmd.Process.Kill()
		return fmt.Errorf("write %s: %w", o.pidPath(), err)
	}
	o.logf("starting buildkitd (pid %d, log %s)", pid, o.logPath())
	if err := o.waitReady(ctx, pid, exited, offset); err != nil {
		var e *Error
		if errors.As(err, &e) && e.Kind == ErrExited {
			<-exited // it is gone, so Wait returns at once
			if waitErr != nil {
				e.Msg += " (" + waitErr.Error() + ")"
			}
		}
		if errors.Is(err, ErrTimeout) {
			// Half-started daemons only confuse the next attempt.
			o.stop(pid)
		}
		return err
	}
	o.logf("buildkitd is ready on %s", o.Addr())
	return nil
}

// waitReady polls ListWorkers until the daemon answers with a worker, the
// process exits (exited closes, or pid is gone), or o.StartTimeout passes.
// offset is where this start's output begins in buildkitd.log.
func (o Options) waitReady(ctx context.Context, pid int, exited <-chan struct{}, offset int64) error {
	deadline := time.Now().Add(o.StartTimeout)
	for {
		if _, err := ping(ctx, o.Addr(), 2*time.Second); err == nil {
			return nil
		}
		gone := !alive(pid)
		select {
		case <-exited:
			gone = true
		default:
		}
		if gone {
			return &Error{Kind: ErrExited,
				Msg:  fmt.Sprintf("buildkitd (pid %d) exited during start-up", pid),
				Hint: "see the log below and " + o.logPath() + "; fix the cause and run envd again",
				Log:  logtail.Lines(o.logPath(), offset, 20)}
		}
		if time.Now().After(deadline) {
			return &Error{Kind: ErrTimeout,
				Msg: fmt.Sprintf("buildkitd (pid %d) did not answer on %s within %s", pid, o.Addr(), o.StartTimeout),
				Hint: "see the log below and " + o.logPath() +
					"; a slow first start can take longer: run envd again",
				Log: logtail.Lines(o.logPath(), offset, 20)}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-exited:
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// ping asks the daemon at addr (or the one opts dial) for its workers and
// wants at least one.
func ping(ctx context.Context, addr string, timeout time.Duration, opts ...client.ClientOpt) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := client.New(ctx, addr, opts...)
	if err != nil {
		return "", err
	}
	defer c.Close()
	ws, err := c.ListWorkers(ctx)
	if err != nil {
		return "", err
	}
	if len(ws) == 0 {
		return "", errors.New("no workers")
	}
	return describeVersion(ws[0].BuildkitVersion), nil
}

// describeVersion says which BuildKit a daemon is: "v0.34.2", and for envd
// as its own daemon "v0.34.2 (envd VERSION)", which its revision names.
func describeVersion(v client.BuildkitVersion) string {
	s := v.Version
	if s == "" {
		s = "unknown"
	}
	if strings.HasPrefix(v.Revision, "envd ") {
		s += " (" + v.Revision + ")"
	}
	return s
}

// clearSocket removes a socket left by a daemon that died without cleaning
// up, and refuses to touch one that something else is listening on.
func (o Options) clearSocket() error {
	sock := o.socketPath()
	fi, err := os.Lstat(sock)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSocket == 0 {
		return &Error{Kind: ErrSocketInUse,
			Msg:  fmt.Sprintf("%s exists and is not a socket", sock),
			Hint: "remove it, or give the managed builder another directory"}
	}
	if conn, err := net.DialTimeout("unix", sock, time.Second); err == nil {
		conn.Close()
		return &Error{Kind: ErrSocketInUse,
			Msg: fmt.Sprintf("another process is listening on %s, and it is not the buildkitd envd manages (%s names no live buildkitd)",
				sock, o.pidPath()),
			Hint: "stop that process, or use it as your builder: `envd context create --builder unix://" + sock + "`"}
	}
	o.logf("removing stale socket %s", sock)
	if err := os.Remove(sock); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Stop ends the managed buildkitd of o: SIGTERM, up to 10 s to exit, then
// SIGKILL (a container is stopped, its volume kept). It is not an error if
// none is running.
func Stop(ctx context.Context, o Options) error {
	o, err := o.withDefaults()
	if err != nil {
		return err
	}
	if o.Container != nil {
		return stopContainer(ctx, o)
	}
	if _, err := os.Stat(o.Dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	unlock, err := o.lock()
	if err != nil {
		return err
	}
	defer unlock()
	pid, ok := o.managedPID()
	if !ok {
		os.Remove(o.pidPath())
		return o.removeDeadSocket()
	}
	return o.stop(pid)
}

// stop is Stop for a known pid, with the lock held.
func (o Options) stop(pid int) error {
	o.logf("stopping buildkitd (pid %d)", pid)
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && err != syscall.ESRCH {
		return fmt.Errorf("stop buildkitd (pid %d): %w", pid, err)
	}
	if !waitGone(pid, stopTimeout) {
		o.logf("buildkitd (pid %d) ignored SIGTERM for %s; killing it", pid, stopTimeout)
		// Its whole session: it was started with Setsid.
		syscall.Kill(-pid, syscall.SIGKILL)
		syscall.Kill(pid, syscall.SIGKILL)
		if !waitGone(pid, 5*time.Second) {
			return fmt.Errorf("buildkitd (pid %d) is still running after SIGKILL", pid)
		}
	}
	os.Remove(o.pidPath())
	return o.removeDeadSocket()
}

// removeDeadSocket removes the socket if nothing listens on it any more.
func (o Options) removeDeadSocket() error {
	sock := o.socketPath()
	if fi, err := os.Lstat(sock); err != nil || fi.Mode()&fs.ModeSocket == 0 {
		return nil
	}
	if conn, err := net.DialTimeout("unix", sock, time.Second); err == nil {
		conn.Close()
		return nil
	}
	if err := os.Remove(sock); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
