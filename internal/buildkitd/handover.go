package buildkitd

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"envd.dev/envd/internal/docker"
)

// A builder on another machine pushes the image to a hand-over registry
// beside it: envd-handover, run in the builder container (on the host's
// network), so that machine's Docker pulls it from its own 127.0.0.1 and the
// image never crosses the network. It lives as long as envd's exec of it.

// handoverWait bounds each exchange with envd-handover.
const handoverWait = 30 * time.Second

// RemoteHandover is envd-handover running in a builder container.
type RemoteHandover struct {
	conn   *execConn
	lines  *bufio.Reader
	host   string
	secret string
	mu     sync.Mutex // one request at a time
}

// StartHandover starts the hand-over registry in the builder container
// (one Ensure made with Remote) with a fresh secret, and returns once it
// listens. Close stops it.
func StartHandover(ctx context.Context, dk *docker.Client, container string) (*RemoteHandover, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	conn, err := execIn(ctx, dk, container, []string{imageHandover})
	if err != nil {
		return nil, err
	}
	h := &RemoteHandover{conn: conn, lines: bufio.NewReader(conn), secret: hex.EncodeToString(key)}
	line, err := h.exchange(ctx, h.secret)
	if err == nil {
		h.host, err = handoverHost(line)
	}
	if err != nil {
		conn.Close()
		if exitErr := conn.exitErr(); exitErr != nil {
			err = exitErr
		}
		return nil, fmt.Errorf("start the hand-over registry in the builder container %s: %w\n"+
			"  hint: the builder image may predate envd-handover: run `make build`, then envd again (it remakes the builder)", container, err)
	}
	return h, nil
}

// handoverHost checks envd-handover's first line: the address it listens on.
func handoverHost(line string) (string, error) {
	host, port, err := net.SplitHostPort(line)
	if err != nil || host != "127.0.0.1" || port == "" || port == "0" {
		return "", fmt.Errorf("it said %q where its address (127.0.0.1:PORT) was due", line)
	}
	return line, nil
}

// Host is the registry's host:port on the builder's machine, for image
// references there.
func (h *RemoteHandover) Host() string { return h.host }

// Secret is the password (for handover.User) every request must carry.
func (h *RemoteHandover) Secret() string { return h.secret }

// Keep records, once that machine's Docker pulled it, that image now
// consists of the blobs of repo@digest, so they stay for the next build.
func (h *RemoteHandover) Keep(image, repo, digest string) error {
	for _, f := range []string{image, repo, digest} {
		if f == "" || strings.ContainsAny(f, " \t\r\n") {
			return fmt.Errorf("keep %q %q %q: each must be one word", image, repo, digest)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), handoverWait)
	defer cancel()
	line, err := h.exchange(ctx, "keep "+image+" "+repo+" "+digest)
	if err != nil {
		return fmt.Errorf("the hand-over registry: %w", err)
	}
	if msg, ok := strings.CutPrefix(line, "error: "); ok {
		return fmt.Errorf("the hand-over registry could not keep %s: %s", image, msg)
	}
	if line != "ok" {
		return fmt.Errorf("the hand-over registry answered %q to keep", line)
	}
	return nil
}

// exchange sends one line and reads the answer, within ctx.
func (h *RemoteHandover) exchange(ctx context.Context, line string) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	type answer struct {
		line string
		err  error
	}
	got := make(chan answer, 1)
	go func() {
		if _, err := h.conn.Write([]byte(line + "\n")); err != nil {
			got <- answer{"", err}
			return
		}
		s, err := h.lines.ReadString('\n')
		got <- answer{strings.TrimSpace(s), err}
	}()
	select {
	case a := <-got:
		return a.line, a.err
	case <-ctx.Done():
		h.conn.Close() // unblocks the read; the registry is of no use now
		return "", ctx.Err()
	}
}

// Close stops the registry: its stdin ends, and it exits. Blobs stay in
// the builder's volume for the next build.
func (h *RemoteHandover) Close() error {
	h.conn.closeWrite()
	defer h.conn.Close()
	go io.Copy(io.Discard, h.lines) // nothing is due; read it so that its output can end
	select {
	case <-h.conn.ended:
	case <-time.After(5 * time.Second):
		return errors.New("the hand-over registry in the builder did not stop within 5s of the end of its input")
	}
	return h.conn.exitErr()
}
