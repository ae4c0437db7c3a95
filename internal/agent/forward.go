//go:build unix

package agent

import (
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/gliderlabs/ssh"
)

// Local forwarding (direct-tcpip) is what VS Code Remote-SSH and `ssh -L`
// use to reach servers in the container. The container is the user's own
// sandbox, so any destination is allowed.
func (s *Server) allowLocalForward(ctx ssh.Context, host string, port uint32) bool {
	s.log.Debug("ssh: local forward", "user", ctx.User(), "dest", net.JoinHostPort(host, strconv.FormatUint(uint64(port), 10)))
	return true
}

// Reverse forwarding (`ssh -R`) listens inside the container; allowed too.
func (s *Server) allowReverseForward(ctx ssh.Context, host string, port uint32) bool {
	s.log.Debug("ssh: reverse forward", "user", ctx.User(), "bind", net.JoinHostPort(host, strconv.FormatUint(uint64(port), 10)))
	return true
}

// forwardAgent serves SSH_AUTH_SOCK for a session whose client asked for
// agent forwarding (ssh -A): each connection to the socket becomes an
// auth-agent channel to the client. cleanup closes the socket and its
// private directory.
func forwardAgent(sess ssh.Session) (sock string, cleanup func(), err error) {
	ln, err := ssh.NewAgentListener()
	if err != nil {
		return "", func() {}, err
	}
	sock = ln.Addr().String()
	go ssh.ForwardAgentConnections(ln, sess)
	return sock, func() {
		_ = ln.Close()
		_ = os.RemoveAll(filepath.Dir(sock))
	}, nil
}
