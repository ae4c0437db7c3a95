package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
)

// Dial opens a connection to a port of the environment's container through
// the API server's port-forward: the same path kubectl port-forward takes,
// so it works wherever the user may reach the API server, and nothing is
// exposed on the cluster's network. Connections to one environment share
// one upgraded connection to the API server.
func (r *Runtime) Dial(ctx context.Context, name string, port int) (net.Conn, error) {
	t, err := r.tunnel(name)
	if err != nil {
		return nil, err
	}
	return t.dial(ctx, port)
}

func (r *Runtime) tunnel(name string) (*tunnel, error) {
	r.tunnelsMu.Lock()
	defer r.tunnelsMu.Unlock()
	if r.tunnels == nil {
		r.tunnels = map[string]*tunnel{}
	}
	if t := r.tunnels[name]; t != nil {
		return t, nil
	}
	transport, upgrader, err := spdy.RoundTripperFor(r.cfg)
	if err != nil {
		return nil, err
	}
	url := r.cs.CoreV1().RESTClient().Post().Namespace(r.namespace).
		Resource("pods").Name(podName(name)).SubResource("portforward").URL()
	t := &tunnel{
		pod:    podName(name),
		dialer: spdy.NewDialer(upgrader, &http.Client{Transport: transport}, http.MethodPost, url),
		r:      r,
	}
	r.tunnels[name] = t
	return t, nil
}

// closeTunnel forgets the environment's tunnel: its pod is going away.
func (r *Runtime) closeTunnel(name string) {
	r.tunnelsMu.Lock()
	t := r.tunnels[name]
	delete(r.tunnels, name)
	r.tunnelsMu.Unlock()
	if t != nil {
		t.mu.Lock()
		if t.conn != nil {
			t.conn.Close()
		}
		t.mu.Unlock()
	}
}

// tunnel is the upgraded connection to one pod's port-forward, dialled
// when first needed and again after it closes.
type tunnel struct {
	pod    string
	dialer httpstream.Dialer
	r      *Runtime

	mu     sync.Mutex
	conn   httpstream.Connection
	nextID int
}

func (t *tunnel) connection() (httpstream.Connection, int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.conn != nil {
		select {
		case <-t.conn.CloseChan():
			t.conn = nil
		default:
		}
	}
	if t.conn == nil {
		conn, proto, err := t.dialer.Dial(portforward.PortForwardProtocolV1Name)
		if err != nil {
			return nil, 0, t.r.explain(err, "create", "pods/portforward")
		}
		if proto != portforward.PortForwardProtocolV1Name {
			conn.Close()
			return nil, 0, fmt.Errorf("port-forward to pod %s: the API server offered protocol %q", t.pod, proto)
		}
		t.conn = conn
	}
	t.nextID++
	return t.conn, t.nextID, nil
}

func (t *tunnel) dial(ctx context.Context, port int) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	conn, id, err := t.connection()
	if err != nil {
		return nil, err
	}
	headers := http.Header{}
	headers.Set(corev1.StreamType, corev1.StreamTypeError)
	headers.Set(corev1.PortHeader, strconv.Itoa(port))
	headers.Set(corev1.PortForwardRequestIDHeader, strconv.Itoa(id))
	errStream, err := conn.CreateStream(headers)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("port-forward to pod %s: %w", t.pod, err)
	}
	errStream.Close() // nothing to send on it
	headers.Set(corev1.StreamType, corev1.StreamTypeData)
	data, err := conn.CreateStream(headers)
	if err != nil {
		conn.RemoveStreams(errStream)
		conn.Close()
		return nil, fmt.Errorf("port-forward to pod %s: %w", t.pod, err)
	}
	c := &streamConn{conn: conn, data: data, errStream: errStream, done: make(chan struct{}), pod: t.pod, port: port}
	go c.readErrors()
	return c, nil
}

// streamConn is one forwarded connection as a net.Conn.
type streamConn struct {
	conn      httpstream.Connection
	data      httpstream.Stream
	errStream httpstream.Stream
	pod       string
	port      int

	done   chan struct{} // closed once the error stream ended
	errMsg error
	close  sync.Once
}

// readErrors collects what the kubelet says went wrong with this
// connection (for example: nothing listens on the port).
func (c *streamConn) readErrors() {
	msg, err := io.ReadAll(c.errStream)
	switch {
	case err != nil:
		c.errMsg = err
	case len(msg) > 0:
		c.errMsg = fmt.Errorf("port-forward to %s:%d: %s", c.pod, c.port, msg)
	}
	close(c.done)
}

func (c *streamConn) Read(p []byte) (int, error) {
	n, err := c.data.Read(p)
	if errors.Is(err, io.EOF) {
		// The kubelet closes the data stream and then says why, if it was
		// an error: wait briefly for it rather than report a plain EOF.
		select {
		case <-c.done:
			if c.errMsg != nil {
				return n, c.errMsg
			}
		case <-time.After(time.Second):
		}
	}
	return n, err
}

func (c *streamConn) Write(p []byte) (int, error) { return c.data.Write(p) }

func (c *streamConn) Close() error {
	c.close.Do(func() {
		c.data.Close()
		c.data.Reset()
		c.conn.RemoveStreams(c.data, c.errStream)
	})
	return nil
}

func (c *streamConn) LocalAddr() net.Addr  { return forwardAddr("envd") }
func (c *streamConn) RemoteAddr() net.Addr { return forwardAddr(c.pod + ":" + strconv.Itoa(c.port)) }

// Deadlines are not supported by the stream; ssh and the copy loops envd
// runs over it do not use them.
func (c *streamConn) SetDeadline(time.Time) error      { return errors.ErrUnsupported }
func (c *streamConn) SetReadDeadline(time.Time) error  { return errors.ErrUnsupported }
func (c *streamConn) SetWriteDeadline(time.Time) error { return errors.ErrUnsupported }

type forwardAddr string

func (a forwardAddr) Network() string { return "portforward" }
func (a forwardAddr) String() string  { return string(a) }
