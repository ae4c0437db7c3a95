//go:build unix

package agent

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gliderlabs/ssh"
)

// exitInternal is the exit status of a session the agent could not run (no
// shell, no PTY); commands report theirs, or 128+n if signal n killed them.
const exitInternal = 255

// handleSession runs one exec or shell session and sends its exit status:
// the command's code, 128+n if signal n killed it, exitInternal if it could
// not be started. When the session ends, for whatever reason, its processes
// are hung up and then killed, so nothing it started outlives it.
func (s *Server) handleSession(sess ssh.Session) {
	if !s.track() {
		_ = sess.Exit(exitInternal)
		return
	}
	defer s.wg.Done()

	log := s.log.With("user", sess.User(), "remote", sess.RemoteAddr().String())
	env, cleanup, err := s.sessionEnv(sess)
	if err != nil {
		log.Warn("ssh session: agent forwarding failed", "err", err)
	}
	defer cleanup()

	cmd := s.shellCommand(sess.RawCommand(), env)
	ptyReq, winCh, isPty := sess.Pty()
	// The command line may hold secrets, so only at debug level.
	log.Info("ssh session start", "exec", sess.RawCommand() != "", "pty", isPty)
	log.Debug("ssh session command", "command", sess.RawCommand())

	var code int
	if isPty {
		code, err = s.runPTY(sess, cmd, ptyReq, winCh)
	} else {
		code, err = s.runPipes(sess, cmd)
	}
	if err != nil {
		log.Warn("ssh session failed", "err", err)
		fmt.Fprintf(sess.Stderr(), "envd-agent: %v\r\n", err)
		code = exitInternal
	}
	log.Info("ssh session end", "exit", code)
	_ = sess.Exit(code)
}

// shellCommand runs raw with the user's shell, or a login shell if raw is
// empty, as OpenSSH does.
func (s *Server) shellCommand(raw string, env []string) *exec.Cmd {
	shell := s.cfg.SSH.Shell
	args := []string{shell, "-l"}
	if raw != "" {
		args = []string{shell, "-c", raw}
	}
	return &exec.Cmd{Path: shell, Args: args, Env: env, Dir: s.sessionDir(env)}
}

// sessionDir is the configured workdir, or home if it is missing.
func (s *Server) sessionDir(env []string) string {
	for _, dir := range []string{s.cfg.Workdir, getEnv(env, "HOME")} {
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
			return dir
		}
	}
	return "/"
}

// sessionEnv is the base environment, then what the client sent, then the
// variables OpenSSH sets for a session.
func (s *Server) sessionEnv(sess ssh.Session) (env []string, cleanup func(), err error) {
	env = append([]string(nil), s.env...)
	for _, kv := range sess.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		env = setEnv(env, k, v)
	}
	if ptyReq, _, ok := sess.Pty(); ok {
		env = setEnv(env, "TERM", ptyReq.Term)
	}
	rhost, rport, _ := net.SplitHostPort(sess.RemoteAddr().String())
	lhost, lport, _ := net.SplitHostPort(sess.LocalAddr().String())
	env = setEnv(env, "SSH_CLIENT", fmt.Sprintf("%s %s %s", rhost, rport, lport))
	env = setEnv(env, "SSH_CONNECTION", fmt.Sprintf("%s %s %s %s", rhost, rport, lhost, lport))

	cleanup = func() {}
	if ssh.AgentRequested(sess) {
		var sock string
		sock, cleanup, err = forwardAgent(sess)
		if err == nil {
			env = setEnv(env, "SSH_AUTH_SOCK", sock)
		}
	}
	return env, cleanup, err
}

// runPipes runs cmd with its stdin, stdout and stderr on the channel.
func (s *Server) runPipes(sess ssh.Session, cmd *exec.Cmd) (int, error) {
	cmd.SysProcAttr = newSessionAttr()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 0, err
	}
	// Our own pipes rather than io.Writers, so that Wait returns when the
	// command exits even if something it left behind still holds stdout.
	outR, outW, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer outR.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		_ = outW.Close()
		return 0, err
	}
	defer errR.Close()
	cmd.Stdout, cmd.Stderr = outW, errW
	err = cmd.Start()
	_ = outW.Close()
	_ = errW.Close()
	if err != nil {
		return 0, err
	}

	go func() {
		_, _ = io.Copy(stdin, sess)
		_ = stdin.Close() // the client's EOF becomes the command's
	}()
	var output sync.WaitGroup
	output.Go(func() { _, _ = io.Copy(sess, outR) })
	output.Go(func() { _, _ = io.Copy(sess.Stderr(), errR) })

	code := s.wait(sess, cmd)
	s.drainOutput(&output, outR, errR)
	return code, nil
}

// wait waits for the command to exit or the session to close, forwards the
// client's signals meanwhile, and then ends the command's session: SIGHUP
// (shells pass it on to their jobs), SIGKILL after s.hangup.
func (s *Server) wait(sess ssh.Session, cmd *exec.Cmd) int {
	sid := cmd.Process.Pid
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()

	// Buffered and drained until the channel closes: gliderlabs sends
	// signals from its request loop and must never block on us.
	sigs := make(chan ssh.Signal, 16)
	sess.Signals(sigs)
	go func() {
		for {
			select {
			case sig := <-sigs:
				if n, ok := signals[sig]; ok {
					_ = syscall.Kill(-sid, n) // the leader's group, as a terminal would
				}
			case <-sess.Context().Done():
				return
			}
		}
	}()

	select {
	case <-exited:
	case <-sess.Context().Done():
	}
	stopSession(sid, syscall.SIGHUP, s.hangup)
	<-exited
	return exitCode(cmd.ProcessState)
}

// drainOutput lets the copies finish the output already written, for at most
// s.drain (a process that left the session may still hold the pipe).
func (s *Server) drainOutput(output *sync.WaitGroup, files ...*os.File) {
	done := make(chan struct{})
	go func() {
		output.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(s.drain):
		for _, f := range files {
			_ = f.Close()
		}
		<-done
	}
}

// signals maps SSH signal names (RFC 4254 section 6.10) to ours.
var signals = map[ssh.Signal]syscall.Signal{
	ssh.SIGABRT: syscall.SIGABRT,
	ssh.SIGALRM: syscall.SIGALRM,
	ssh.SIGFPE:  syscall.SIGFPE,
	ssh.SIGHUP:  syscall.SIGHUP,
	ssh.SIGILL:  syscall.SIGILL,
	ssh.SIGINT:  syscall.SIGINT,
	ssh.SIGKILL: syscall.SIGKILL,
	ssh.SIGPIPE: syscall.SIGPIPE,
	ssh.SIGQUIT: syscall.SIGQUIT,
	ssh.SIGSEGV: syscall.SIGSEGV,
	ssh.SIGTERM: syscall.SIGTERM,
	ssh.SIGUSR1: syscall.SIGUSR1,
	ssh.SIGUSR2: syscall.SIGUSR2,
}
