// Package streamconn has the pieces every net.Conn envd makes of a
// command's stdin and stdout shares (an exec in a pod or a container, an
// ssh process): what to call its ends, deadlines it cannot have, and a
// bounded copy of the command's messages for the error a user sees.
package streamconn

import (
	"strings"
	"sync"
	"time"
)

// Addr names one end of such a connection: Net is how it is made
// ("docker-exec", "portforward", "ssh"), Name what it reaches.
type Addr struct{ Net, Name string }

func (a Addr) Network() string { return a.Net }
func (a Addr) String() string  { return a.Name }

// NoDeadlines gives a conn the deadline methods of net.Conn, which a pipe
// to a command cannot honour; HTTP and gRPC do without them.
type NoDeadlines struct{}

func (NoDeadlines) SetDeadline(time.Time) error      { return nil }
func (NoDeadlines) SetReadDeadline(time.Time) error  { return nil }
func (NoDeadlines) SetWriteDeadline(time.Time) error { return nil }

// Capture keeps the first Max bytes written (or, with Last, the final
// ones): enough of a stream for an error message.
type Capture struct {
	Max  int
	Last bool

	mu  sync.Mutex
	buf []byte
}

func (c *Capture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.Last {
		c.buf = append(c.buf, p...)
		if extra := len(c.buf) - c.Max; extra > 0 {
			c.buf = append(c.buf[:0], c.buf[extra:]...)
		}
	} else if room := c.Max - len(c.buf); room > 0 {
		c.buf = append(c.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// String is what was kept, without surrounding space.
func (c *Capture) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.TrimSpace(string(c.buf))
}
