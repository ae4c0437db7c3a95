package forward

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The test binary is also the background forwarder that StartDetached
// starts: FORWARD_TEST_CHILD says how it behaves.
func TestMain(m *testing.M) {
	switch os.Getenv("FORWARD_TEST_CHILD") {
	case "":
		os.Exit(m.Run())
	case "serve":
		os.Exit(runChild(false))
	case "stubborn": // ignores SIGTERM, so Stop has to SIGKILL it
		os.Exit(runChild(true))
	case "fail":
		fmt.Fprintln(os.Stderr, "forward child: simulated failure to bind")
		os.Exit(1)
	case "sleep": // never writes its state
		fmt.Fprintf(os.Stderr, "forward child: pid %d, not writing state\n", os.Getpid())
		time.Sleep(30 * time.Second)
		os.Exit(0)
	}
	os.Exit(2)
}

// runChild is a tiny background forwarder: one forward to an echo server of
// its own, state written after Listen, served until SIGTERM.
func runChild(stubborn bool) int {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Print(err)
		return 1
	}
	go serveEcho(echo, nil)
	dial := dialMap(map[int]string{7: echo.Addr().String()})
	f, err := Listen([]Forward{{Name: "echo", RemotePort: 7, LocalAddr: "127.0.0.1:0"}}, dial, log.Printf)
	if err != nil {
		log.Print(err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if stubborn {
		signal.Ignore(syscall.SIGTERM)
		ctx = context.Background()
	}
	if err := WriteState(os.Getenv("FORWARD_TEST_STATE"), State{PID: os.Getpid(), Forwards: f.Forwards()}); err != nil {
		log.Print(err)
		return 1
	}
	f.Serve(ctx)
	return 0
}

// serveEcho echoes every connection back and, once the client has finished
// sending, reports that on eof (if not nil) and closes its own write half.
func serveEcho(ln net.Listener, eof chan<- struct{}) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			if _, err := io.Copy(c, c); err != nil {
				return
			}
			if eof != nil {
				eof <- struct{}{}
			}
			c.(*net.TCPConn).CloseWrite()
		}()
	}
}

type echoServer struct {
	addr string
	eof  chan struct{} // one value per connection whose client half-closed
}

func startEcho(t *testing.T) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	e := &echoServer{addr: ln.Addr().String(), eof: make(chan struct{}, 10)}
	go serveEcho(ln, e.eof)
	return e
}

// dialMap is the "environment": remote ports mapped to local addresses.
func dialMap(ports map[int]string) DialFunc {
	return func(ctx context.Context, port int) (net.Conn, error) {
		addr, ok := ports[port]
		if !ok {
			return nil, fmt.Errorf("nothing listens on port %d", port)
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
}

// serve runs f.Serve in the background; the returned func cancels it and
// waits for Serve to return.
func serve(t *testing.T, f *Forwarder) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var err error
	go func() { err = f.Serve(ctx); close(done) }()
	stop = func() {
		cancel()
		select {
		case <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Serve did not return after the context ended")
		}
	}
	t.Cleanup(func() { cancel(); <-done })
	return stop
}

func dialLocal(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c.(*net.TCPConn)
}

// roundTrip writes msg and reads it back.
func roundTrip(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("reading the echo of %q: %v", msg, err)
	}
	if string(buf) != msg {
		t.Fatalf("echo: got %q, want %q", buf, msg)
	}
}

type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (r *logRecorder) logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, fmt.Sprintf(format, args...))
}

func (r *logRecorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.lines, "\n")
}

func TestForwardTwoPorts(t *testing.T) {
	web, api := startEcho(t), startEcho(t)
	f, err := Listen([]Forward{
		{Name: "web", RemotePort: 80, LocalAddr: "127.0.0.1:0"},
		{Name: "api", RemotePort: 443, LocalAddr: "127.0.0.1:0"},
	}, dialMap(map[int]string{80: web.addr, 443: api.addr}), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	stop := serve(t, f)

	fws := f.Forwards()
	servers := map[string]*echoServer{"web": web, "api": api}
	if len(fws) != 2 || fws[0].Name != "web" || fws[0].RemotePort != 80 || fws[1].Name != "api" || fws[1].RemotePort != 443 {
		t.Fatalf("Forwards() = %+v", fws)
	}
	for _, fw := range fws {
		t.Run(fw.Name, func(t *testing.T) {
			host, port, _ := net.SplitHostPort(fw.LocalAddr)
			if host != "127.0.0.1" || port == "0" || port == "" {
				t.Fatalf("bound address %q: want 127.0.0.1 and a real port", fw.LocalAddr)
			}
			c := dialLocal(t, fw.LocalAddr)
			roundTrip(t, c, "hello "+fw.Name)

			// Half-close: the echo server sees EOF, and what it still
			// sends arrives, followed by EOF.
			io.WriteString(c, " and bye")
			if err := c.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			select {
			case <-servers[fw.Name].eof: // also shows the port went to the right server
			case <-time.After(5 * time.Second):
				t.Fatal("the echo server did not see EOF after the client's CloseWrite")
			}
			rest, err := io.ReadAll(c)
			if err != nil {
				t.Fatalf("reading after CloseWrite: %v", err)
			}
			if string(rest) != " and bye" {
				t.Fatalf("after CloseWrite: got %q, want %q", rest, " and bye")
			}
		})
	}
	stop()
}

// freeAddr returns a 127.0.0.1 address that nothing listens on just now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestListenFailureClosesWhatItBound(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyAddr := busy.Addr().String()

	tests := []struct {
		name string
		fws  func(free string) []Forward
		want []string // in the error
	}{
		{"second in use", func(free string) []Forward {
			return []Forward{{"web", 80, free}, {"db", 5432, busyAddr}}
		}, []string{busyAddr, `"db"`, "already in use", "stop what listens there", "another local port"}},
		{"first in use", func(free string) []Forward {
			return []Forward{{"db", 5432, busyAddr}, {"web", 80, free}}
		}, []string{busyAddr, `"db"`, "already in use"}},
		{"bad remote port", func(free string) []Forward {
			return []Forward{{"web", 80, free}, {"db", 0, "127.0.0.1:0"}}
		}, []string{`"db"`, "remote port 0"}},
		{"no local address", func(free string) []Forward {
			return []Forward{{"web", 80, free}, {"db", 5432, ""}}
		}, []string{`"db"`, "no local address"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			free := freeAddr(t)
			f, err := Listen(tt.fws(free), dialMap(nil), t.Logf)
			if err == nil {
				f.Close()
				t.Fatal("Listen succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			ln, err := net.Listen("tcp", free)
			if err != nil {
				t.Fatalf("%s is still bound after the failed Listen: %v", free, err)
			}
			ln.Close()
		})
	}
}

func TestDialFailureEndsOnlyThatConnection(t *testing.T) {
	echo := startEcho(t)
	var calls int
	var mu sync.Mutex
	dial := func(ctx context.Context, port int) (net.Conn, error) {
		mu.Lock()
		calls++
		first := calls == 1
		mu.Unlock()
		if first {
			return nil, errors.New("no route (test)")
		}
		return dialMap(map[int]string{80: echo.addr})(ctx, port)
	}
	var logs logRecorder
	f, err := Listen([]Forward{{"web", 80, "127.0.0.1:0"}}, dial, logs.logf)
	if err != nil {
		t.Fatal(err)
	}
	stop := serve(t, f)
	addr := f.Forwards()[0].LocalAddr

	c1 := dialLocal(t, addr)
	if n, err := c1.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("first connection, whose dial failed: read %d bytes, %v; want EOF", n, err)
	}
	c2 := dialLocal(t, addr)
	roundTrip(t, c2, "still serving")

	got := logs.String()
	for _, w := range []string{"web", "port 80", "no route (test)"} {
		if !strings.Contains(got, w) {
			t.Errorf("log %q does not mention %q", got, w)
		}
	}
	stop()
}

func TestCancelClosesEverything(t *testing.T) {
	echo := startEcho(t)
	f, err := Listen([]Forward{{"web", 80, "127.0.0.1:0"}}, dialMap(map[int]string{80: echo.addr}), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	stop := serve(t, f)
	addr := f.Forwards()[0].LocalAddr
	c := dialLocal(t, addr)
	roundTrip(t, c, "open") // the proxied connection is established

	stop() // fails the test if Serve does not return
	if n, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("open connection after cancel: read %d bytes, %v; want it closed", n, err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("%s still accepts connections after cancel", addr)
	}
}

func TestStateRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), "forward.json")
	if _, err := ReadState(p); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ReadState of a missing file: %v, want os.ErrNotExist", err)
	}
	want := State{PID: 42, Forwards: []Forward{{"web", 80, "127.0.0.1:8080"}}}
	if err := WriteState(p, want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadState(p)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ReadState = %+v, want %+v", got, want)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
}

func testExe(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// killAtEnd makes sure a forwarder child does not outlive the test; it
// checks the pid is still that child before killing it.
func killAtEnd(t *testing.T, pid int, exe string) {
	t.Cleanup(func() {
		if isForwarder(pid, exe) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
}

// gone waits up to 5 s until /proc/PID is gone (the child is reaped by
// StartDetached's goroutine).
func gone(pid int) bool {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); errors.Is(err, os.ErrNotExist) {
			return true
		}
	}
	return false
}

func startChild(t *testing.T, mode string) (s State, exe, statePath, logFile string, err error) {
	t.Helper()
	exe = testExe(t)
	dir := t.TempDir()
	statePath = filepath.Join(dir, "forward.json")
	logFile = filepath.Join(dir, "forward.log")
	t.Setenv("FORWARD_TEST_CHILD", mode)
	t.Setenv("FORWARD_TEST_STATE", statePath)
	s, err = StartDetached(exe, []string{"forward"}, statePath, logFile, 10*time.Second)
	if err == nil {
		killAtEnd(t, s.PID, exe)
	}
	return s, exe, statePath, logFile, err
}

func TestDetachedStartAndStop(t *testing.T) {
	s, exe, statePath, _, err := startChild(t, "serve")
	if err != nil {
		t.Fatal(err)
	}
	if s.PID <= 0 || s.PID == os.Getpid() {
		t.Fatalf("state pid %d is not the child's", s.PID)
	}
	if onDisk, err := ReadState(statePath); err != nil || !reflect.DeepEqual(onDisk, s) {
		t.Fatalf("state file %+v (%v), StartDetached returned %+v", onDisk, err, s)
	}
	if len(s.Forwards) != 1 || strings.HasSuffix(s.Forwards[0].LocalAddr, ":0") {
		t.Fatalf("state forwards %+v: want one bound address", s.Forwards)
	}
	// The child's session is its own, not the test's.
	if sid, err := childSession(s.PID); err != nil || sid != s.PID {
		t.Errorf("child session %d (%v), want %d", sid, err, s.PID)
	}
	c := dialLocal(t, s.Forwards[0].LocalAddr)
	roundTrip(t, c, "through the child")
	c.Close()

	if got, ok := Running(statePath, exe); !ok || got.PID != s.PID {
		t.Fatalf("Running = %+v, %v; want pid %d, true", got, ok, s.PID)
	}
	if err := Stop(statePath, exe); err != nil {
		t.Fatal(err)
	}
	if !gone(s.PID) {
		t.Fatalf("pid %d is still there after Stop", s.PID)
	}
	if _, err := os.Stat(statePath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state file after Stop: %v", err)
	}
	if _, ok := Running(statePath, exe); ok {
		t.Error("Running after Stop")
	}
	if err := Stop(statePath, exe); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

// childSession reads the session id, field 6 of /proc/PID/stat.
func childSession(pid int) (int, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 4 {
		return 0, fmt.Errorf("short stat %q", s)
	}
	return strconv.Atoi(fields[3])
}

func TestStopKillsAForwarderIgnoringSIGTERM(t *testing.T) {
	s, exe, statePath, _, err := startChild(t, "stubborn")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := Stop(statePath, exe); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < stopTimeout {
		t.Errorf("Stop returned after %s, before the %s grace period", d, stopTimeout)
	}
	if !gone(s.PID) {
		t.Fatalf("pid %d is still there after Stop", s.PID)
	}
}

func TestStartDetachedChildFails(t *testing.T) {
	tests := []struct {
		mode, timeout string
		want          []string
	}{
		{"fail", "10s", []string{"exited before it was ready", "forward child: simulated failure to bind"}},
		{"sleep", "300ms", []string{"not ready after 300ms", "not writing state"}},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			exe := testExe(t)
			dir := t.TempDir()
			statePath := filepath.Join(dir, "forward.json")
			logFile := filepath.Join(dir, "forward.log")
			// An earlier run's output must not be quoted.
			os.WriteFile(logFile, []byte("line from an earlier run\n"), 0o600)
			t.Setenv("FORWARD_TEST_CHILD", tt.mode)
			t.Setenv("FORWARD_TEST_STATE", statePath)
			timeout, _ := time.ParseDuration(tt.timeout)
			_, err := StartDetached(exe, []string{"forward"}, statePath, logFile, timeout)
			if err == nil {
				t.Fatal("StartDetached succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "earlier run") {
				t.Errorf("error quotes an earlier run's log: %q", err)
			}
			if m := regexp.MustCompile(`pid (\d+), not writing`).FindStringSubmatch(err.Error()); m != nil {
				pid, _ := strconv.Atoi(m[1])
				killAtEnd(t, pid, exe)
				if !gone(pid) {
					t.Errorf("the child that timed out (pid %d) is still running", pid)
				}
			}
		})
	}
}

func TestStopSparesOtherPrograms(t *testing.T) {
	exe := testExe(t)
	tests := []struct {
		name string
		cmd  func() *exec.Cmd
	}{
		{"another program", func() *exec.Cmd { return exec.Command("sleep", "30") }},
		{"another program with the word forward", func() *exec.Cmd {
			return exec.Command("sh", "-c", "sleep 30; :", "forward")
		}},
		{"this executable without the word forward", func() *exec.Cmd {
			cmd := exec.Command(exe, "child")
			cmd.Env = append(os.Environ(), "FORWARD_TEST_CHILD=sleep")
			return cmd
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := tt.cmd()
			// Its own process group, so that the cleanup also kills the
			// sleep that sh started.
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			pid := cmd.Process.Pid
			t.Cleanup(func() { syscall.Kill(-pid, syscall.SIGKILL); cmd.Wait() })

			statePath := filepath.Join(t.TempDir(), "forward.json")
			if err := WriteState(statePath, State{PID: pid}); err != nil {
				t.Fatal(err)
			}
			if _, ok := Running(statePath, exe); ok {
				t.Error("Running reports another program as the forwarder")
			}
			// The recorded forwarder is gone (its pid was recycled): Stop
			// forgets it without signalling the pid.
			if err := Stop(statePath, exe); err != nil {
				t.Errorf("Stop: %v", err)
			}
			time.Sleep(100 * time.Millisecond) // a signal would have landed by now
			if !alive(pid) {
				t.Fatalf("Stop killed pid %d, which is not a forwarder", pid)
			}
			if _, err := os.Stat(statePath); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("state file after Stop: %v", err)
			}
		})
	}
}

func TestStopWithoutForwarder(t *testing.T) {
	exe := testExe(t)
	exited := exec.Command("true")
	if err := exited.Run(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		content string // "" for no file
		wantErr string
	}{
		{"no state file", "", ""},
		{"dead pid", fmt.Sprintf(`{"pid": %d}`, exited.Process.Pid), ""},
		{"damaged file", `{"pid":`, "damaged"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			statePath := filepath.Join(t.TempDir(), "forward.json")
			if tt.content != "" {
				os.WriteFile(statePath, []byte(tt.content), 0o600)
			}
			err := Stop(statePath, exe)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Stop: %v", err)
				}
				if _, err := os.Stat(statePath); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("state file after Stop: %v", err)
				}
			} else if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Stop: %v, want an error about %q", err, tt.wantErr)
			}
			if _, ok := Running(statePath, exe); ok {
				t.Error("Running with no live forwarder")
			}
		})
	}
}
