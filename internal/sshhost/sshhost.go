// Package sshhost reaches a remote server the way the user's own OpenSSH
// does (their ~/.ssh/config, agent and known_hosts): envd runs `ssh`, as
// DOCKER_HOST=ssh:// does, and uses the process's stdin and stdout as a
// connection — to `docker system dial-stdio` for the server's Docker, or
// to a port on the server's loopback through `ssh -W`.
package sshhost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"envd.dev/envd/internal/streamconn"
)

// Host is a server to reach over SSH: an ssh:// URL, or a Host alias of the
// user's ssh config.
type Host struct {
	// Dest is what ssh is given: a host name, an address or an alias.
	Dest string
	// User and Port are the URL's; "" and 0 leave them to the ssh config.
	User string
	Port int
}

var destRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._:%\[\]-]*$`)

// Parse reads ssh://[USER@]HOST[:PORT] (no path), or a bare alias.
func Parse(s string) (Host, error) {
	hint := "write ssh://USER@HOST[:PORT], or ssh://ALIAS with a Host ALIAS of your ~/.ssh/config"
	if !strings.HasPrefix(s, "ssh://") {
		return Host{}, fmt.Errorf("%q is not an ssh:// address\n  hint: %s", s, hint)
	}
	u, err := url.Parse(s)
	if err != nil {
		return Host{}, fmt.Errorf("%q: %v\n  hint: %s", s, err, hint)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return Host{}, fmt.Errorf("%q: an ssh:// address has no path or query\n  hint: %s", s, hint)
	}
	h := Host{Dest: u.Hostname(), User: u.User.Username()}
	if _, hasPassword := u.User.Password(); hasPassword {
		return Host{}, fmt.Errorf("%q: envd never takes a password in an address\n  hint: use a key (ssh-copy-id) and your ssh-agent", s)
	}
	if p := u.Port(); p != "" {
		if h.Port, err = strconv.Atoi(p); err != nil || h.Port < 1 || h.Port > 65535 {
			return Host{}, fmt.Errorf("%q: bad port %q\n  hint: %s", s, p, hint)
		}
	}
	// A leading '-' would be an option of ssh's; the RE refuses it.
	if h.Dest == "" || !destRE.MatchString(h.Dest) {
		return Host{}, fmt.Errorf("%q: no host name\n  hint: %s", s, hint)
	}
	if h.User != "" && !destRE.MatchString(h.User) {
		return Host{}, fmt.Errorf("%q: bad user name %q\n  hint: %s", s, h.User, hint)
	}
	return h, nil
}

// String is the host as an ssh:// URL.
func (h Host) String() string {
	s := "ssh://"
	if h.User != "" {
		s += h.User + "@"
	}
	if h.Port != 0 {
		return s + net.JoinHostPort(h.Dest, strconv.Itoa(h.Port))
	}
	return s + h.Dest
}

// Binary is the ssh client envd runs; tests may point it elsewhere.
var Binary = "ssh"

// CommandEnv replaces "ssh" with a command of the user's, as
// GIT_SSH_COMMAND does for git: e.g. "ssh -F ~/work/ssh_config".
const CommandEnv = "ENVD_SSH_COMMAND"

// command is the ssh program and the arguments that go before envd's.
func command() (string, []string) {
	if f := strings.Fields(os.Getenv(CommandEnv)); len(f) > 0 {
		return f[0], f[1:]
	}
	return Binary, nil
}

// sshCmd is ssh with args, as the user has it.
func sshCmd(ctx context.Context, args []string) *exec.Cmd {
	bin, pre := command()
	if ctx == nil {
		return exec.Command(bin, append(pre, args...)...)
	}
	return exec.CommandContext(ctx, bin, append(pre, args...)...)
}

// Args are ssh's arguments to run remote on h: never a prompt (envd may
// run in the background, and a ProxyCommand has no terminal), and a
// connection that notices a dead server.
func (h Host) Args(remote ...string) []string {
	args := []string{"-o", "BatchMode=yes", "-o", "ServerAliveInterval=30", "-T"}
	if h.User != "" {
		args = append(args, "-l", h.User)
	}
	if h.Port != 0 {
		args = append(args, "-p", strconv.Itoa(h.Port))
	}
	return append(append(args, "--", h.Dest), remote...)
}

// forwardArgs are ssh's arguments to connect its stdio to addr on the server.
func (h Host) forwardArgs(addr string) []string {
	args := h.Args()
	// -W goes before the destination: after it, all is the remote command.
	i := len(args) - 2
	return append(append(args[:i:i], "-W", addr), args[i:]...)
}

// Run runs remote on the server and returns its output; a failure says
// what ssh or the command wrote.
func (h Host) Run(ctx context.Context, remote ...string) ([]byte, error) {
	cmd := sshCmd(ctx, h.Args(remote...))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, h.explain(err, stderr.String())
	}
	return out, nil
}

// DialStdio runs remote on the server and returns its stdin and stdout as
// a connection. It outlives ctx; Close ends the ssh process.
func (h Host) DialStdio(ctx context.Context, remote ...string) (net.Conn, error) {
	return h.dial(ctx, h.Args(remote...), strings.Join(remote, " "))
}

// DialTCP connects to addr as the server sees it (its 127.0.0.1), through
// ssh's own port forwarding: no process of envd's runs there.
func (h Host) DialTCP(ctx context.Context, addr string) (net.Conn, error) {
	return h.dial(ctx, h.forwardArgs(addr), addr)
}

func (h Host) dial(ctx context.Context, args []string, what string) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cmd := sshCmd(nil, args) // the connection outlives ctx
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	// A pipe of our own, not StdoutPipe: Wait closes that one when ssh
	// exits, and a read after it loses the last bytes ("file already
	// closed"). This one ends in EOF once all of it is read.
	stdout, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout = w
	c := &conn{host: h, what: what, cmd: cmd, in: stdin, out: stdout, stderr: &streamconn.Capture{Max: 4096, Last: true}, done: make(chan struct{})}
	cmd.Stderr = c.stderr
	err = cmd.Start()
	w.Close() // ssh has its own copy
	if err != nil {
		stdout.Close()
		return nil, fmt.Errorf("running %s: %w\n  hint: install an OpenSSH client (or set %s)", cmd.Path, err, CommandEnv)
	}
	go func() {
		c.waitErr = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

// conn is a net.Conn over an ssh process's stdin and stdout.
type conn struct {
	streamconn.NoDeadlines
	host    Host
	what    string
	cmd     *exec.Cmd
	in      io.WriteCloser
	out     io.ReadCloser
	stderr  *streamconn.Capture
	done    chan struct{}
	waitErr error
	once    sync.Once
}

// Read returns, at the end, why ssh stopped: its message is the error a
// user needs ("Permission denied (publickey)").
func (c *conn) Read(p []byte) (int, error) {
	n, err := c.out.Read(p)
	if err == io.EOF {
		select {
		case <-c.done:
		case <-time.After(2 * time.Second):
		}
		if c.waitErr != nil {
			return n, c.host.explain(c.waitErr, c.stderr.String())
		}
	}
	return n, err
}

func (c *conn) Write(p []byte) (int, error) { return c.in.Write(p) }

// Close ends ssh's stdin, which ends the remote side; ssh gets a moment to
// finish by itself before it is killed.
func (c *conn) Close() error {
	c.once.Do(func() {
		c.in.Close()
		select {
		case <-c.done:
		case <-time.After(3 * time.Second):
			c.cmd.Process.Kill()
			<-c.done
		}
		c.out.Close()
	})
	return nil
}

// CloseWrite ends the remote side's stdin only (the Docker client half-closes).
func (c *conn) CloseWrite() error { return c.in.Close() }

func (c *conn) LocalAddr() net.Addr { return streamconn.Addr{Net: "ssh", Name: "envd"} }
func (c *conn) RemoteAddr() net.Addr {
	return streamconn.Addr{Net: "ssh", Name: c.host.String() + " " + c.what}
}

// Kinds of Error, for errors.Is.
var (
	ErrUnreachable = errors.New("server not reachable")
	ErrAuth        = errors.New("server refused the login")
	ErrHostKey     = errors.New("server's host key not known")
	ErrNoDocker    = errors.New("no Docker on the server")
)

// Error is an ssh failure, with what to do about it. Its text does not
// name the host: the caller's does ("cannot reach Docker on HOST: ...").
type Error struct {
	Kind error
	Host Host
	Msg  string // ssh's own words
	Hint string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s (%s)\n  hint: %s", e.Kind, e.Msg, e.Hint)
}

func (e *Error) Is(target error) bool { return target == e.Kind }

// explain names what went wrong from ssh's exit and its stderr.
func (h Host) explain(err error, stderr string) error {
	msg := lastLines(stderr, 3)
	if msg == "" {
		msg = err.Error()
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return &Error{Kind: ErrUnreachable, Host: h, Msg: msg, Hint: "install an OpenSSH client"}
	}
	switch {
	case strings.Contains(stderr, "Permission denied"):
		return &Error{Kind: ErrAuth, Host: h, Msg: msg, Hint: "check that `ssh " + h.sshCommandLine() + " true` works without a prompt: add your key (ssh-copy-id) or load it into your ssh-agent (ssh-add)"}
	case strings.Contains(stderr, "Host key verification failed"), strings.Contains(stderr, "REMOTE HOST IDENTIFICATION HAS CHANGED"), strings.Contains(stderr, "No ED25519 host key is known"):
		return &Error{Kind: ErrHostKey, Host: h, Msg: msg, Hint: "connect once with `ssh " + h.sshCommandLine() + "` to check and accept its host key"}
	case ee.ExitCode() == 255:
		return &Error{Kind: ErrUnreachable, Host: h, Msg: msg, Hint: "check the address and that `ssh " + h.sshCommandLine() + " true` works"}
	case strings.Contains(stderr, "docker: command not found"), strings.Contains(stderr, "docker: not found"), ee.ExitCode() == 127:
		return &Error{Kind: ErrNoDocker, Host: h, Msg: msg, Hint: "install Docker on the server (and add your user there to the docker group)"}
	case strings.Contains(stderr, "docker.sock") && strings.Contains(stderr, "permission denied"):
		return &Error{Kind: ErrNoDocker, Host: h, Msg: msg, Hint: "your user on the server may not use its Docker: add it to the docker group there (sudo usermod -aG docker USER)"}
	case strings.Contains(stderr, "Cannot connect to the Docker daemon"), strings.Contains(stderr, "Is the docker daemon running"):
		return &Error{Kind: ErrNoDocker, Host: h, Msg: msg, Hint: "start Docker on the server (sudo systemctl start docker)"}
	}
	return errors.New(msg)
}

// sshCommandLine is how the user would reach h by hand.
func (h Host) sshCommandLine() string {
	s := ""
	if h.Port != 0 {
		s += "-p " + strconv.Itoa(h.Port) + " "
	}
	if h.User != "" {
		s += h.User + "@"
	}
	return s + h.Dest
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	var keep []string
	for _, l := range lines {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "Warning: Permanently added") {
			keep = append(keep, l)
		}
	}
	if len(keep) > n {
		keep = keep[len(keep)-n:]
	}
	return strings.Join(keep, "; ")
}
