//go:build unix

package agent

import (
	"io"
	"net"
	"testing"
)

// echoServer accepts one connection and echoes it back.
func echoServer(t *testing.T, ln net.Listener) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(c, c)
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
	})
}

func exchange(t *testing.T, c net.Conn) {
	t.Helper()
	defer c.Close()
	msg := []byte("ping through the tunnel")
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if string(got) != string(msg) {
		t.Fatalf("echo = %q, want %q", got, msg)
	}
}

func TestLocalForward(t *testing.T) {
	ts := newTestServer(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	echoServer(t, ln)
	c, err := ts.mustDial(t).Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	exchange(t, c)
}

func TestReverseForward(t *testing.T) {
	ts := newTestServer(t)
	// The listener is on the server's side (the container).
	ln, err := ts.mustDial(t).Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	echoServer(t, ln)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	exchange(t, c)
}
