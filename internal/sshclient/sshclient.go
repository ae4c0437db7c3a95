// Package sshclient is envd's own ssh client: it dials an environment's
// agent with envd's key and the environment's pinned host key, for `envd up`
// (waiting until ssh answers), `envd ssh` and `envd exec`.
package sshclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/term"
)

// Target is one environment's sshd.
type Target struct {
	Addr string // host:port, or a name for messages when Dial is set
	// Dial, when set, opens the connection instead of TCP to Addr: the
	// runtime's way into the environment (Kubernetes' port-forward).
	Dial    func(ctx context.Context) (net.Conn, error)
	User    string
	Signer  ssh.Signer
	HostKey ssh.PublicKey // pinned; any other key is refused
	// ForwardAgent offers the user's ssh-agent ($SSH_AUTH_SOCK) to Run's
	// session, as `ForwardAgent yes` does for OpenSSH. Off unless the
	// environment was started with envd up --forward-agent.
	ForwardAgent bool
}

// Dial connects and authenticates.
func Dial(ctx context.Context, t Target) (*ssh.Client, error) {
	cfg := &ssh.ClientConfig{
		User:            t.User,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(t.Signer)},
		HostKeyCallback: ssh.FixedHostKey(t.HostKey),
		Timeout:         5 * time.Second,
	}
	var conn net.Conn
	var err error
	if t.Dial != nil {
		conn, err = t.Dial(ctx)
	} else {
		var d net.Dialer
		conn, err = d.DialContext(ctx, "tcp", t.Addr)
	}
	if err != nil {
		return nil, err
	}
	if deadline, ok := ctx.Deadline(); ok {
		conn.SetDeadline(deadline)
	}
	c, chans, reqs, err := ssh.NewClientConn(conn, t.Addr, cfg)
	if err != nil {
		conn.Close()
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	client := ssh.NewClient(c, chans, reqs)
	if t.ForwardAgent {
		if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
			// Serves the agent channels the server opens; Run asks for them.
			if err := agent.ForwardToRemote(client, sock); err != nil {
				client.Close()
				return nil, err
			}
			forwarding.Store(client, true)
			go func() { client.Wait(); forwarding.Delete(client) }()
		}
	}
	return client, nil
}

// forwarding holds the clients Dial set up agent forwarding on.
var forwarding sync.Map

// WaitReady dials until a command runs, alive() says to stop, or ctx ends.
// alive is polled between attempts (e.g. "is the container still running").
func WaitReady(ctx context.Context, t Target, alive func(context.Context) error) error {
	var last error
	for {
		if err := alive(ctx); err != nil {
			return err
		}
		attempt, cancel := context.WithTimeout(ctx, 3*time.Second)
		c, err := Dial(attempt, t)
		cancel()
		if err == nil {
			_, err = Output(c, "true")
			c.Close()
			if err == nil {
				return nil
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last attempt: %v)", ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Output runs cmd and returns its combined output.
func Output(c *ssh.Client, cmd string) ([]byte, error) {
	s, err := c.NewSession()
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.CombinedOutput(cmd)
}

// Run runs cmd (a shell command line; "" for a login shell) with the given
// streams and returns its exit code. With a terminal on stdin it gets a PTY
// that follows the terminal's size.
func Run(c *ssh.Client, cmd string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	s, err := c.NewSession()
	if err != nil {
		return 255, err
	}
	defer s.Close()
	s.Stdin, s.Stdout, s.Stderr = stdin, stdout, stderr
	if _, ok := forwarding.Load(c); ok {
		if err := agent.RequestAgentForwarding(s); err != nil {
			return 255, err
		}
	}

	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		restore, err := startPTY(s, int(f.Fd()))
		if err != nil {
			return 255, err
		}
		defer restore()
	}
	if cmd == "" {
		err = s.Shell()
	} else {
		err = s.Start(cmd)
	}
	if err != nil {
		return 255, err
	}
	return exitCode(s.Wait())
}

// startPTY requests a PTY of the terminal's size, puts the terminal in raw
// mode and forwards window changes.
func startPTY(s *ssh.Session, fd int) (func(), error) {
	w, h, err := term.GetSize(fd)
	if err != nil {
		w, h = 80, 24
	}
	termType := os.Getenv("TERM")
	if termType == "" {
		termType = "xterm-256color"
	}
	if err := s.RequestPty(termType, h, w, ssh.TerminalModes{ssh.ECHO: 1}); err != nil {
		return nil, err
	}
	old, err := term.MakeRaw(fd)
	if err != nil {
		return nil, err
	}
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-winch:
				if w, h, err := term.GetSize(fd); err == nil {
					s.WindowChange(h, w)
				}
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(winch)
		close(done)
		term.Restore(fd, old)
	}, nil
}

func exitCode(err error) (int, error) {
	var ee *ssh.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee):
		return ee.ExitStatus(), nil
	}
	var missing *ssh.ExitMissingError
	if errors.As(err, &missing) {
		return 255, errors.New("the connection closed before the command reported its exit status")
	}
	return 255, err
}
