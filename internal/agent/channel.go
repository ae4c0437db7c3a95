//go:build unix

package agent

import (
	"context"

	"github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"
)

// sessionChannel wraps gliderlabs' session channel handler to fix two things
// it does not give us:
//
//   - A session's Context is the connection's, so it is not cancelled when a
//     client closes one channel but keeps the connection (VS Code multiplexes
//     many sessions over one). Ours is cancelled when the channel closes.
//   - With a PTY, Session.Write rewrites "\n" to "\r\n", which garbles
//     full-screen programs (vim, tmux) that emit bare line feeds
//     (gliderlabs/ssh#129). The kernel PTY already does that translation, so
//     PTY output goes to the raw channel instead.
func (s *Server) sessionChannel(srv *ssh.Server, conn *gossh.ServerConn, newChan gossh.NewChannel, ctx ssh.Context) {
	sctx := newSessionContext(ctx)
	defer sctx.cancel()
	// Returns when the channel's requests end, that is when it is closed.
	ssh.DefaultSessionHandler(srv, conn, &rawChannelRecorder{NewChannel: newChan, sctx: sctx}, sctx)
}

// sessionContext is the connection's ssh.Context, cancelled early when the
// session's channel closes, and carrying the raw channel.
type sessionContext struct {
	ssh.Context // values and metadata stay connection-wide
	done        context.Context
	cancel      context.CancelFunc
	raw         gossh.Channel // set on Accept, before any handler runs
}

func newSessionContext(conn ssh.Context) *sessionContext {
	done, cancel := context.WithCancel(conn)
	return &sessionContext{Context: conn, done: done, cancel: cancel}
}

func (c *sessionContext) Done() <-chan struct{} { return c.done.Done() }
func (c *sessionContext) Err() error            { return c.done.Err() }

// rawChannelRecorder keeps the channel that gliderlabs wraps.
type rawChannelRecorder struct {
	gossh.NewChannel
	sctx *sessionContext
}

func (r *rawChannelRecorder) Accept() (gossh.Channel, <-chan *gossh.Request, error) {
	ch, reqs, err := r.NewChannel.Accept()
	r.sctx.raw = ch
	return ch, reqs, err
}

// rawChannel returns the unwrapped channel of sess (or sess itself if the
// session did not come through sessionChannel).
func rawChannel(sess ssh.Session) gossh.Channel {
	if sctx, ok := sess.Context().(*sessionContext); ok && sctx.raw != nil {
		return sctx.raw
	}
	return sess
}
