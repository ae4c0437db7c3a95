//go:build unix

package agent

import (
	"github.com/gliderlabs/ssh"
	"github.com/pkg/sftp"
)

// handleSFTP serves the sftp subsystem (VS Code, scp and sftp use it) in
// process, as the agent's user. Relative paths start in the session
// directory, like a shell does.
func (s *Server) handleSFTP(sess ssh.Session) {
	if !s.track() {
		_ = sess.Exit(exitInternal)
		return
	}
	defer s.wg.Done()

	server, err := sftp.NewServer(sess, sftp.WithServerWorkingDirectory(s.sessionDir(s.env)))
	if err != nil {
		s.log.Warn("sftp: start failed", "err", err)
		_ = sess.Exit(exitInternal)
		return
	}
	// Serve returns nil when the client ends the session cleanly, and an
	// error when the channel breaks; it closes the files left open. No
	// server.Close: it would close the channel before the exit status is
	// sent, and scp fails without one.
	err = server.Serve()
	code := 0
	if err != nil {
		s.log.Info("sftp session ended", "err", err)
		code = 1
	}
	_ = sess.Exit(code)
}
