package buildkitd

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"envd.dev/envd/internal/atomicfile"
)

// fakeDaemon sets up a state dir, a machine that passes the pre-start checks,
// and a shell script standing in for buildkitd. The script writes its pid to
// DIR/fake.pid.
func fakeDaemon(t *testing.T, body string) Options {
	t.Helper()
	dir, err := os.MkdirTemp("", "bk") // short: socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	fakeSys(t, 0, map[string]string{"runc": "/usr/sbin/runc"}, "/x/envd")
	bin := writeExec(t, filepath.Join(dir, "fake-buildkitd"),
		"#!/bin/sh\necho $$ > "+filepath.Join(dir, "fake.pid")+"\n"+body)
	o := Options{Dir: filepath.Join(dir, "state"), Binary: bin, StartTimeout: time.Second}
	t.Cleanup(func() { Stop(context.Background(), o) })
	return o
}

func fakePID(t *testing.T, o Options) int {
	b, err := os.ReadFile(filepath.Join(filepath.Dir(o.Dir), "fake.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

func TestEnsureDaemonExits(t *testing.T) {
	o := fakeDaemon(t, `i=1; while [ $i -le 25 ]; do echo "line $i"; i=$((i+1)); done
echo "buildkitd: no worker found, rebuild the buildkit" >&2
exit 1
`)
	os.MkdirAll(o.Dir, 0o700)
	os.WriteFile(o.logPath(), []byte("from an earlier run\n"), 0o600)
	_, err := Ensure(context.Background(), o)
	var e *Error
	if !errors.As(err, &e) || e.Kind != ErrExited {
		t.Fatalf("err = %v, want ErrExited", err)
	}
	if len(e.Log) != 20 || e.Log[19] != "buildkitd: no worker found, rebuild the buildkit" || e.Log[0] != "line 7" {
		t.Errorf("log tail = %q", e.Log)
	}
	if !strings.Contains(err.Error(), "exited during start-up (exit status 1)") || !strings.Contains(err.Error(), "hint:") {
		t.Errorf("message: %v", err)
	}
}

func TestEnsureTimeout(t *testing.T) {
	o := fakeDaemon(t, "echo starting\ntrap 'exit 0' TERM\nwhile :; do sleep 0.1; done\n")
	_, err := Ensure(context.Background(), o)
	var e *Error
	if !errors.As(err, &e) || e.Kind != ErrTimeout {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if len(e.Log) != 1 || e.Log[0] != "starting" {
		t.Errorf("log tail = %q", e.Log)
	}
	// A daemon that never answered is not left behind.
	if pid := fakePID(t, o); !waitGone(pid, 2*time.Second) {
		t.Errorf("fake daemon %d still running", pid)
	}
	if _, err := os.Stat(o.pidPath()); !os.IsNotExist(err) {
		t.Errorf("pid file left: %v", err)
	}
}

func TestEnsureSocket(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, sock string)
		wantErr error  // nil: the socket was cleared and the (fake) start went on
		errHas  string // in the message
	}{
		{"stale socket is removed", func(t *testing.T, sock string) {
			l, err := net.Listen("unix", sock)
			if err != nil {
				t.Fatal(err)
			}
			l.(*net.UnixListener).SetUnlinkOnClose(false)
			l.Close()
		}, ErrExited, ""},
		{"live foreign listener", func(t *testing.T, sock string) {
			l, err := net.Listen("unix", sock)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
		}, ErrSocketInUse, "another process is listening"},
		{"not a socket", func(t *testing.T, sock string) {
			os.WriteFile(sock, nil, 0o600)
		}, ErrSocketInUse, "is not a socket"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := fakeDaemon(t, "exit 3\n")
			os.MkdirAll(o.Dir, 0o700)
			tt.setup(t, o.socketPath())
			_, err := Ensure(context.Background(), o)
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.errHas) {
				t.Fatalf("err = %v, want %v containing %q", err, tt.wantErr, tt.errHas)
			}
			if tt.wantErr == ErrExited {
				if _, err := os.Lstat(o.socketPath()); !os.IsNotExist(err) {
					t.Errorf("stale socket still there: %v", err)
				}
			}
		})
	}
}

func TestEnsureChecksFirst(t *testing.T) {
	o := fakeDaemon(t, "exit 3\n")
	fakeSys(t, 1000, map[string]string{"runc": "/usr/sbin/runc"}, "/x/envd")
	if _, err := Ensure(context.Background(), o); !errors.Is(err, ErrNotRoot) {
		t.Fatalf("err = %v, want ErrNotRoot", err)
	}
	o.Mirror = "ftp://x"
	if _, err := Ensure(context.Background(), o); !errors.Is(err, ErrBadMirror) {
		t.Fatalf("err = %v, want ErrBadMirror", err)
	}
}

func TestStopNotRunning(t *testing.T) {
	o := fakeDaemon(t, "exit 3\n")
	if err := Stop(context.Background(), o); err != nil { // no state dir yet
		t.Fatal(err)
	}
	os.MkdirAll(o.Dir, 0o700)
	// A pid file naming a live process that is not our daemon (this test).
	os.WriteFile(o.pidPath(), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
	if _, ok := o.managedPID(); ok {
		t.Fatal("the test process must not count as the managed daemon")
	}
	if err := Stop(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(o.pidPath()); !os.IsNotExist(err) {
		t.Errorf("pid file left: %v", err)
	}
}

func TestStatusNotRunning(t *testing.T) {
	o := fakeDaemon(t, "exit 3\n")
	o.Mirror = "127.0.0.1:5000"
	os.MkdirAll(o.Dir, 0o700)
	b, _ := renderConfig(o)
	atomicfile.Write(o.configPath(), b, 0o644)
	st, err := Status(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	want := State{Addr: "unix://" + filepath.Join(o.Dir, "buildkitd.sock"), Dir: o.Dir, Mirror: "127.0.0.1:5000"}
	if st != want {
		t.Errorf("got %+v, want %+v", st, want)
	}
}
