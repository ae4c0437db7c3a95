//go:build unix

package agent

import (
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"

	"github.com/creack/pty"
	"github.com/gliderlabs/ssh"
	"golang.org/x/sys/unix"
)

// runPTY runs cmd on a new pseudo-terminal sized and resized as the client
// asks; the terminal becomes the controlling terminal of a new session.
func (s *Server) runPTY(sess ssh.Session, cmd *exec.Cmd, req ssh.Pty, winCh <-chan ssh.Window) (int, error) {
	ptmx, tty, err := openPTY()
	if err != nil {
		return 0, err
	}
	defer ptmx.Close()
	setWinsize(ptmx, req.Window)
	cmd.Env = setEnv(cmd.Env, "SSH_TTY", tty.Name())
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	err = cmd.Start()
	// Only the command may hold the terminal, so that reading ptmx ends
	// (EIO) once the command and its children are gone.
	_ = tty.Close()
	if err != nil {
		return 0, err
	}

	// gliderlabs queues window changes on winCh and closes it when the
	// channel closes; it blocks until we take them, so drain it to the end.
	go func() {
		for w := range winCh {
			setWinsize(ptmx, w)
		}
	}()
	go func() { _, _ = io.Copy(ptmx, sess) }()
	var output sync.WaitGroup
	output.Go(func() { _, _ = io.Copy(rawChannel(sess), ptmx) })

	code := s.wait(sess, cmd)
	s.drainOutput(&output, ptmx)
	return code, nil
}

// openPTY opens a terminal pair whose master is non-blocking. creack/pty
// leaves the master in blocking mode (it uses File.Fd), where Close cannot
// interrupt a Read; the session needs that to end a stuck copy.
func openPTY() (ptmx, tty *os.File, err error) {
	blocking, tty, err := pty.Open()
	if err != nil {
		return nil, nil, err
	}
	defer blocking.Close()
	fd, err := unix.FcntlInt(blocking.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err == nil {
		err = unix.SetNonblock(fd, true)
	}
	if err != nil {
		_ = tty.Close()
		return nil, nil, err
	}
	return os.NewFile(uintptr(fd), blocking.Name()), tty, nil
}

// setWinsize resizes the terminal without File.Fd, which would make ptmx
// blocking again. The kernel sends SIGWINCH to the foreground job.
func setWinsize(ptmx *os.File, w ssh.Window) {
	rc, err := ptmx.SyscallConn()
	if err != nil {
		return
	}
	ws := &unix.Winsize{Row: uint16(w.Height), Col: uint16(w.Width)}
	_ = rc.Control(func(fd uintptr) {
		_ = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, ws)
	})
}
