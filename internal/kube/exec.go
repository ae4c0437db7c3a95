package kube

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"

	"envd.dev/envd/internal/streamconn"
)

// DialBuilder connects to the builder's buildkitd listening on socket in
// its pod: `buildctl dial-stdio` run there through the API server's exec
// (as kubectl exec does it: WebSocket, else SPDY), its stdin and stdout
// being the connection. The connection outlives ctx; Close ends the exec.
func (r *Runtime) DialBuilder(ctx context.Context, socket string) (net.Conn, error) {
	req := r.cs.CoreV1().RESTClient().Post().Namespace(r.namespace).
		Resource("pods").Name(builderName).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{
			Container: builderContainer,
			Command:   []string{"buildctl", "--addr", "unix://" + socket, "dial-stdio"},
			Stdin:     true, Stdout: true, Stderr: true,
		}, scheme.ParameterCodec)
	spdyExec, err := remotecommand.NewSPDYExecutor(r.cfg, "POST", req.URL())
	if err != nil {
		return nil, err
	}
	wsExec, err := remotecommand.NewWebSocketExecutor(r.cfg, "GET", req.URL().String())
	if err != nil {
		return nil, err
	}
	exec, err := remotecommand.NewFallbackExecutor(wsExec, spdyExec, httpstream.IsUpgradeFailure)
	if err != nil {
		return nil, err
	}
	return startExecConn(context.WithoutCancel(ctx), exec, r.namespace+"/"+builderName), nil
}

// execConn is a net.Conn over an exec's stdin and stdout.
type execConn struct {
	streamconn.NoDeadlines                // an exec stream has none; gRPC does not need them
	in                     *io.PipeWriter // the exec's stdin
	out                    *io.PipeReader // its stdout
	cancel                 context.CancelFunc
	where                  string
	once                   sync.Once
}

func startExecConn(ctx context.Context, exec remotecommand.Executor, where string) *execConn {
	ctx, cancel := context.WithCancel(ctx)
	stdinR, stdinW := io.Pipe()
	stdoutR, stdoutW := io.Pipe()
	c := &execConn{in: stdinW, out: stdoutR, cancel: cancel, where: where}
	go func() {
		stderr := &streamconn.Capture{Max: 4096, Last: true}
		err := exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: stdinR, Stdout: stdoutW, Stderr: stderr})
		if msg := strings.TrimSpace(stderr.String()); err != nil && msg != "" {
			err = fmt.Errorf("%w: %s", err, msg)
		} else if err == nil {
			err = io.EOF
		}
		stdoutW.CloseWithError(err)
		stdinR.CloseWithError(err)
	}()
	return c
}

func (c *execConn) Read(p []byte) (int, error)  { return c.out.Read(p) }
func (c *execConn) Write(p []byte) (int, error) { return c.in.Write(p) }

// Close ends stdin, which ends buildctl, and the exec with it.
func (c *execConn) Close() error {
	c.once.Do(func() {
		c.in.Close()
		// Give the exec a moment to end by itself, then cut it.
		go func() { time.Sleep(5 * time.Second); c.cancel() }()
	})
	return nil
}

func (c *execConn) LocalAddr() net.Addr  { return forwardAddr("envd") }
func (c *execConn) RemoteAddr() net.Addr { return forwardAddr(c.where) }
