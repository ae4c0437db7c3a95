// Package forward makes TCP ports of a remote environment reachable on the
// user's machine: it listens on local addresses and, for every connection,
// dials the port inside the environment through a caller-supplied function
// (the Kubernetes API server's port-forward, or a plain dial in tests).
//
// It also runs such a forwarder in the background (envd up -d): a detached
// process records its pid and bound addresses in a state file, and Stop
// ends it only after checking that the pid still belongs to it.
package forward

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"envd.dev/envd/internal/atomicfile"
	"envd.dev/envd/internal/logtail"
)

// DialFunc opens a connection to a port inside the environment.
type DialFunc func(ctx context.Context, port int) (net.Conn, error)

// Forward is one port: the service's name (for messages), the port inside
// the environment, and the local address ("127.0.0.1:0" picks a free port).
type Forward struct {
	Name       string `json:"name"`
	RemotePort int    `json:"remote_port"`
	LocalAddr  string `json:"local_addr"`
}

// Forwarder holds the listeners of a set of forwards.
type Forwarder struct {
	dial      DialFunc
	logf      func(format string, args ...any)
	forwards  []Forward // with the bound addresses
	listeners []net.Listener

	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{} // both sides of every proxied connection
}

// Listen binds every forward's local address first, so that a port in use
// is reported before anything is served. On any failure it closes what it
// bound. The Forwarder's Forwards report the bound addresses, with the real
// port where port 0 was asked. logf may be nil.
func Listen(fs []Forward, dial DialFunc, logf func(format string, args ...any)) (*Forwarder, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	f := &Forwarder{dial: dial, logf: logf, conns: map[net.Conn]struct{}{}}
	for _, fw := range fs {
		if err := check(fw); err != nil {
			f.Close()
			return nil, err
		}
		ln, err := net.Listen("tcp", fw.LocalAddr)
		if err != nil {
			f.Close()
			if errors.Is(err, syscall.EADDRINUSE) {
				return nil, fmt.Errorf("cannot forward %q: local address %s is already in use; stop what listens there, or choose another local port for %q",
					fw.Name, fw.LocalAddr, fw.Name)
			}
			return nil, fmt.Errorf("cannot forward %q: listen on %s: %w", fw.Name, fw.LocalAddr, err)
		}
		fw.LocalAddr = ln.Addr().String()
		f.listeners = append(f.listeners, ln)
		f.forwards = append(f.forwards, fw)
	}
	return f, nil
}

func check(fw Forward) error {
	if fw.RemotePort < 1 || fw.RemotePort > 65535 {
		return fmt.Errorf("cannot forward %q: remote port %d is not between 1 and 65535", fw.Name, fw.RemotePort)
	}
	// net.Listen would take "" as every interface on a random port, which
	// would expose the environment to the network.
	if fw.LocalAddr == "" {
		return fmt.Errorf("cannot forward %q: no local address given (for example 127.0.0.1:%d)", fw.Name, fw.RemotePort)
	}
	return nil
}

// Forwards returns the forwards with their bound local addresses.
func (f *Forwarder) Forwards() []Forward {
	return append([]Forward(nil), f.forwards...)
}

// Serve accepts on every listener until ctx ends or Close is called, then
// closes the listeners and every open connection and returns nil. Each
// accepted connection is joined to a new connection from the DialFunc; a
// failed dial is logged and ends only that connection. Serve is meant to be
// called once.
func (f *Forwarder) Serve(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var loops, handlers sync.WaitGroup
	for i, ln := range f.listeners {
		loops.Add(1)
		go func() {
			defer loops.Done()
			f.accept(ctx, ln, f.forwards[i], &handlers)
		}()
	}
	loopsDone := make(chan struct{})
	go func() { loops.Wait(); close(loopsDone) }()

	select {
	case <-ctx.Done():
	case <-loopsDone: // Close was called
	}
	cancel() // aborts dials still in progress
	f.Close()
	<-loopsDone
	handlers.Wait() // no Add can come after the loops have ended
	return nil
}

func (f *Forwarder) accept(ctx context.Context, ln net.Listener, fw Forward, handlers *sync.WaitGroup) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Running out of file descriptors and the like: wait a little
			// rather than spin, and keep serving.
			f.logf("forward %s: accept on %s: %v", fw.Name, fw.LocalAddr, err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		if !f.track(c) {
			c.Close()
			return
		}
		handlers.Add(1)
		go func() {
			defer handlers.Done()
			f.handle(ctx, c, fw)
		}()
	}
}

func (f *Forwarder) handle(ctx context.Context, local net.Conn, fw Forward) {
	defer f.untrack(local)
	remote, err := f.dial(ctx, fw.RemotePort)
	if err != nil {
		if ctx.Err() == nil {
			f.logf("forward %s: cannot connect to port %d in the environment: %v", fw.Name, fw.RemotePort, err)
		}
		return
	}
	if !f.track(remote) {
		remote.Close()
		return
	}
	defer f.untrack(remote)
	join(local, remote)
}

// join copies bytes both ways until both directions are done. When one side
// has finished sending, the other side's write half is closed so that it
// sees EOF and can still answer (half-close). A conn without CloseWrite is
// left open instead: closing it fully would drop the answer still coming
// back, and the end of the other direction closes it anyway.
func join(a, b net.Conn) {
	var wg sync.WaitGroup
	half := func(dst, src net.Conn) {
		defer wg.Done()
		if _, err := io.Copy(dst, src); err != nil {
			// A broken side ends the whole connection: the other direction
			// could otherwise wait forever.
			a.Close()
			b.Close()
			return
		}
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
	}
	wg.Add(2)
	go half(b, a)
	go half(a, b)
	wg.Wait()
}

// track records an open connection so that Close can close it; false means
// the Forwarder is already closed.
func (f *Forwarder) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *Forwarder) untrack(c net.Conn) {
	c.Close()
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
}

// Close closes the listeners and every open connection; Serve then returns.
func (f *Forwarder) Close() error {
	f.mu.Lock()
	f.closed = true
	conns := f.conns
	f.conns = map[net.Conn]struct{}{}
	f.mu.Unlock()

	var firstErr error
	for _, ln := range f.listeners {
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) && firstErr == nil {
			firstErr = err
		}
	}
	for c := range conns {
		c.Close()
	}
	return firstErr
}

// State is what a running background forwarder records: its pid and its
// forwards (bound addresses).
type State struct {
	PID      int       `json:"pid"`
	Forwards []Forward `json:"forwards"`
}

// WriteState replaces the state file at path in one step, so that a reader
// (StartDetached polling for it) never sees half of it.
func WriteState(path string, s State) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write forwarder state: %w", err)
	}
	return nil
}

// ReadState reads the state file at path. A missing file gives an error for
// which errors.Is(err, os.ErrNotExist) holds.
func ReadState(path string) (State, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return State{}, fmt.Errorf("read forwarder state: %w", err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return State{}, fmt.Errorf("forwarder state %s is damaged (%v); remove it", path, err)
	}
	if s.PID <= 0 {
		return State{}, fmt.Errorf("forwarder state %s has no valid pid; remove it", path)
	}
	return s, nil
}

// StartDetached starts exe with args in a new session, stdin from /dev/null
// and output appended to logFile, so that it outlives the caller. It waits
// up to timeout until the child has written statePath with its own pid,
// which the child does only after Listen succeeded. If the child exits
// first or the time passes, the child is killed and the error quotes the
// end of its log.
func StartDetached(exe string, args []string, statePath, logFile string, timeout time.Duration) (State, error) {
	log, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return State{}, fmt.Errorf("open the forwarder's log: %w", err)
	}
	defer log.Close()
	offset, _ := log.Seek(0, io.SeekEnd) // this start's output begins here

	cmd := exec.Command(exe, args...)
	// A nil Stdin is /dev/null; an *os.File is handed over as is, with no
	// copying goroutine that would die with this process.
	cmd.Stdout = log
	cmd.Stderr = log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return State{}, fmt.Errorf("start the port forwarder %s: %w", exe, err)
	}
	pid := cmd.Process.Pid
	// Reap it if it exits while this process still runs, so that it does not
	// linger as a zombie; after this process exits, init adopts it.
	exited := make(chan struct{})
	var waitErr error // set before exited closes
	go func() { waitErr = cmd.Wait(); close(exited) }()

	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if s, err := ReadState(statePath); err == nil && s.PID == pid {
			return s, nil
		}
		select {
		case <-exited:
			return State{}, fmt.Errorf("the port forwarder exited before it was ready (%v)%s",
				waitErr, tailMessage(logFile, offset))
		case <-deadline.C:
			// Its whole session: it was started with Setsid.
			syscall.Kill(-pid, syscall.SIGKILL)
			syscall.Kill(pid, syscall.SIGKILL)
			<-exited
			return State{}, fmt.Errorf("the port forwarder (pid %d) was not ready after %s and was stopped%s",
				pid, timeout, tailMessage(logFile, offset))
		case <-tick.C:
		}
	}
}

// tailMessage quotes the last lines the child wrote to its log.
func tailMessage(logFile string, offset int64) string {
	lines := logtail.Lines(logFile, offset, 10)
	if len(lines) == 0 {
		return "; its log " + logFile + " is empty"
	}
	return "; the end of its log " + logFile + ":\n  " + strings.Join(lines, "\n  ")
}

// stopTimeout is how long Stop waits after SIGTERM before SIGKILL.
const stopTimeout = 3 * time.Second

// Stop stops the forwarder recorded in statePath and removes the file. A
// missing file, a dead pid, or a pid that now belongs to another program (a
// recycled pid: the forwarder is gone) is not an error; such a pid is never
// signalled.
func Stop(statePath, exe string) error {
	s, err := ReadState(statePath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if isForwarder(s.PID, exe) {
		if err := syscall.Kill(s.PID, syscall.SIGTERM); err != nil && err != syscall.ESRCH {
			return fmt.Errorf("stop the port forwarder (pid %d): %w", s.PID, err)
		}
		if !waitGone(s.PID, stopTimeout) {
			syscall.Kill(-s.PID, syscall.SIGKILL) // its session, see StartDetached
			syscall.Kill(s.PID, syscall.SIGKILL)
			if !waitGone(s.PID, 5*time.Second) {
				return fmt.Errorf("the port forwarder (pid %d) is still running after SIGKILL", s.PID)
			}
		}
	}
	if err := os.Remove(statePath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove forwarder state: %w", err)
	}
	return nil
}

// Running reports whether the forwarder recorded in statePath is alive,
// with the same checks as Stop. It returns the recorded state either way
// (empty if there is none).
func Running(statePath, exe string) (State, bool) {
	s, err := ReadState(statePath)
	if err != nil {
		return State{}, false
	}
	return s, isForwarder(s.PID, exe)
}

// isForwarder reports whether pid is alive, runs exe, and has the word
// "forward" among its arguments. The checks guard against a pid that was
// recycled after the forwarder died.
func isForwarder(pid int, exe string) bool {
	if pid <= 0 || !alive(pid) {
		return false
	}
	proc := "/proc/" + strconv.Itoa(pid)
	cmdline, err := os.ReadFile(proc + "/cmdline")
	if err != nil {
		return false
	}
	args := bytes.Split(bytes.TrimRight(cmdline, "\x00"), []byte{0})
	hasWord := false
	for _, a := range args[1:] {
		if string(a) == "forward" {
			hasWord = true
		}
	}
	return hasWord && sameExecutable(proc+"/exe", exe)
}

// sameExecutable reports whether the /proc/PID/exe link procExe points to
// exe. /proc/PID/exe names the file really executed, whatever argv[0] says.
func sameExecutable(procExe, exe string) bool {
	want, err := os.Stat(exe)
	if err != nil {
		return false
	}
	if got, err := os.Stat(procExe); err == nil && os.SameFile(got, want) {
		return true
	}
	// A binary replaced since the start (an upgrade) is another file now;
	// the link then still names the old path, marked deleted.
	target, err := os.Readlink(procExe)
	if err != nil {
		return false
	}
	wantPath, err := filepath.EvalSymlinks(exe)
	if err != nil {
		return false
	}
	if wantPath, err = filepath.Abs(wantPath); err != nil {
		return false
	}
	return strings.TrimSuffix(target, " (deleted)") == wantPath
}

// alive reports whether pid exists and is not a zombie: a zombie answers
// kill(pid, 0), but is gone for our purposes.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && err != syscall.EPERM {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses and may
	// itself contain ") ".
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}

// waitGone polls until pid has exited or d has passed.
func waitGone(pid int, d time.Duration) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if !alive(pid) {
			return true
		}
	}
	return !alive(pid)
}
