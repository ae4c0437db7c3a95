package buildkitd

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	bkclient "github.com/moby/buildkit/client"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"

	"envd.dev/envd/internal/docker"
	"envd.dev/envd/internal/streamconn"
)

// A builder container in a Docker on another machine has no socket here:
// envd reaches its daemon, and its hand-over registry, through commands run
// in the container by the Docker API (as `docker exec -i` does), whose stdin
// and stdout are the connection.

// dialCommand connects stdin and stdout to the daemon in the container.
var dialCommand = []string{"buildctl", "--addr", "unix://" + containerSockDir + "/buildkitd.sock", "dial-stdio"}

// DialContainer connects to the buildkitd of the builder container name in
// dk (one Ensure made with Remote): `buildctl dial-stdio` run there. The
// connection outlives ctx; Close ends the command.
func DialContainer(ctx context.Context, dk *docker.Client, name string) (net.Conn, error) {
	return execIn(ctx, dk, name, dialCommand)
}

// pingExec is ping through DialContainer. When the command failed, it says
// more than gRPC does (which sees only a closed connection).
func pingExec(ctx context.Context, dk *docker.Client, cname string, timeout time.Duration) (string, error) {
	var mu sync.Mutex
	var dialled []*execConn
	v, err := ping(ctx, "", timeout, bkclient.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
		c, err := execIn(ctx, dk, cname, dialCommand)
		if err == nil {
			mu.Lock()
			dialled = append(dialled, c)
			mu.Unlock()
		}
		return c, err
	}))
	if err == nil {
		return v, nil
	}
	mu.Lock()
	defer mu.Unlock()
	for _, c := range dialled {
		if exitErr := c.exitErr(); exitErr != nil {
			return "", exitErr
		}
	}
	return "", err
}

// execConn is a net.Conn over the stdin and stdout of a command run in a
// container: stdin is the hijacked connection itself, stdout comes out of
// it multiplexed with stderr.
type execConn struct {
	streamconn.NoDeadlines // a pipe has none; gRPC does not need them
	api                    *client.Client
	id                     string // the exec's
	hj                     client.HijackedResponse
	out                    *io.PipeReader
	head                   *streamconn.Capture // the start of stdout: where Docker says why a command could not start
	stderr                 *streamconn.Capture // the end of stderr: the command's last words
	ended                  chan struct{}
	what                   string // "`CMD` in the builder container NAME", for errors
	once                   sync.Once
}

func execIn(ctx context.Context, dk *docker.Client, cname string, cmd []string) (*execConn, error) {
	what := fmt.Sprintf("`%s` in the builder container %s", strings.Join(cmd, " "), cname)
	ex, err := dk.API().ExecCreate(ctx, cname, client.ExecCreateOptions{
		Cmd: cmd, AttachStdin: true, AttachStdout: true, AttachStderr: true,
	})
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", what, err)
	}
	hj, err := dk.API().ExecAttach(ctx, ex.ID, client.ExecAttachOptions{})
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", what, err)
	}
	outR, outW := io.Pipe()
	c := &execConn{api: dk.API(), id: ex.ID, hj: hj.HijackedResponse, out: outR,
		head: &streamconn.Capture{Max: 1024}, stderr: &streamconn.Capture{Max: 4096, Last: true}, ended: make(chan struct{}), what: what}
	go func() {
		defer close(c.ended)
		_, err := stdcopy.StdCopy(io.MultiWriter(c.head, outW), c.stderr, hj.Reader)
		if err == nil {
			// The command closed its output, so it has exited: say how, if
			// that was a failure.
			if err = c.exitErr(); err == nil {
				err = io.EOF
			}
		} else if msg := c.stderr.String(); msg != "" {
			err = fmt.Errorf("%s: %w: %s", what, err, msg)
		}
		outW.CloseWithError(err)
	}()
	return c, nil
}

// exitErr is why the command ended, when it failed: its exit code and its
// message. It is nil while the command runs, or once it exited with 0.
func (c *execConn) exitErr() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var res client.ExecInspectResult
	// Docker records the exit code a moment after the output ends.
	for range 10 {
		var err error
		if res, err = c.api.ExecInspect(ctx, c.id, client.ExecInspectOptions{}); err != nil || !res.Running {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	switch {
	case res.Running || res.ExitCode == 0:
		return nil
	case res.ExitCode == 126 || res.ExitCode == 127:
		// Docker could not start it, and said why on stdout.
		return fmt.Errorf("%s could not start (exit code %d): %s", c.what, res.ExitCode, c.head.String())
	}
	msg := c.stderr.String()
	if msg == "" {
		msg = "it printed no error"
	}
	return fmt.Errorf("%s failed (exit code %d): %s", c.what, res.ExitCode, msg)
}

func (c *execConn) Read(p []byte) (int, error)  { return c.out.Read(p) }
func (c *execConn) Write(p []byte) (int, error) { return c.hj.Conn.Write(p) }

// closeWrite ends the command's stdin; its output can still be read.
func (c *execConn) closeWrite() error { return c.hj.CloseWrite() }

// Close ends the command's stdin, which ends buildctl dial-stdio and
// envd-handover, and the connection.
func (c *execConn) Close() error {
	c.once.Do(func() {
		c.hj.CloseWrite()
		c.hj.Close()
		c.out.Close()
	})
	return nil
}

func (c *execConn) LocalAddr() net.Addr  { return streamconn.Addr{Net: "docker-exec", Name: "envd"} }
func (c *execConn) RemoteAddr() net.Addr { return streamconn.Addr{Net: "docker-exec", Name: c.what} }
