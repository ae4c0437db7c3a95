//go:build unix

package agent

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	gossh "golang.org/x/crypto/ssh"

	"envd.dev/envd/internal/testing/sshtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testServer is a Server on 127.0.0.1:0 with a fresh host key and one
// authorized client key.
type testServer struct {
	*Server
	addr     string
	dir      string // holds keys; workdir is dir/work
	cfg      *Config
	client   gossh.Signer // authorized
	hostKey  gossh.PublicKey
	keyFile  string // client private key, OpenSSH format, for /usr/bin/ssh
	authKeys string
}

func newTestServer(t *testing.T, edit ...func(*Config)) *testServer {
	t.Helper()
	dir := t.TempDir()
	hostSigner, hostPEM := sshtest.NewKey(t)
	clientSigner, clientPEM := sshtest.NewKey(t)
	ts := &testServer{
		dir:      dir,
		client:   clientSigner,
		hostKey:  hostSigner.PublicKey(),
		keyFile:  filepath.Join(dir, "id_ed25519"),
		authKeys: filepath.Join(dir, "authorized_keys"),
	}
	writeFile(t, filepath.Join(dir, "host_key"), hostPEM)
	writeFile(t, ts.keyFile, clientPEM)
	writeFile(t, ts.authKeys, gossh.MarshalAuthorizedKey(clientSigner.PublicKey()))
	work := filepath.Join(dir, "work")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}

	ts.cfg = &Config{
		SSH: SSHConfig{
			Listen:         "127.0.0.1:0",
			HostKey:        filepath.Join(dir, "host_key"),
			AuthorizedKeys: ts.authKeys,
			Shell:          "/bin/sh",
		},
		Workdir: work,
		LogDir:  filepath.Join(dir, "logs"),
		Env:     map[string]string{"ENVD_CONFIG_VAR": "from-config"},
		// As envd configures it: sshd accepts this name only. The IDs are
		// the test's own, so nothing switches user.
		User: &User{Name: "envd", UID: os.Getuid(), GID: os.Getgid(), Home: dir},
	}
	for _, e := range edit {
		e(ts.cfg)
	}
	ts.cfg.setDefaults()
	if err := ts.cfg.Validate(); err != nil {
		t.Fatal(err)
	}

	srv, err := NewServer(ts.cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ts.Server = srv
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.addr = ln.Addr().String()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ts
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// testLogger sends the agent's logs to the test log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// dial connects with the given auth methods (default: the authorized key).
func (ts *testServer) dial(t *testing.T, auth ...gossh.AuthMethod) (*gossh.Client, error) {
	t.Helper()
	if len(auth) == 0 {
		auth = []gossh.AuthMethod{gossh.PublicKeys(ts.client)}
	}
	return gossh.Dial("tcp", ts.addr, &gossh.ClientConfig{
		User:            "envd",
		Auth:            auth,
		HostKeyCallback: gossh.FixedHostKey(ts.hostKey),
		Timeout:         5 * time.Second,
	})
}

func (ts *testServer) mustDial(t *testing.T) *gossh.Client {
	t.Helper()
	c, err := ts.dial(t)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// run runs cmd in a new session and returns its output and exit status.
func run(t *testing.T, c *gossh.Client, cmd string) (stdout, stderr string, code int) {
	t.Helper()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	var out, errOut bytes.Buffer
	sess.Stdout, sess.Stderr = &out, &errOut
	code = exitStatus(t, sess.Run(cmd), &out, &errOut)
	return out.String(), errOut.String(), code
}

func exitStatus(t *testing.T, err error, out, errOut *bytes.Buffer) int {
	t.Helper()
	var exitErr *gossh.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exitErr):
		return exitErr.ExitStatus()
	default:
		t.Fatalf("session: %v (stdout %q, stderr %q)", err, out, errOut)
		return -1
	}
}

// readUntil reads r until the output contains want, or fails after 5 s.
func readUntil(t *testing.T, r io.Reader, want string) string {
	t.Helper()
	got := make(chan string, 1)
	go func() {
		var buf bytes.Buffer
		chunk := make([]byte, 1024)
		for !strings.Contains(buf.String(), want) {
			n, err := r.Read(chunk)
			buf.Write(chunk[:n])
			if err != nil {
				break
			}
		}
		got <- buf.String()
	}()
	select {
	case s := <-got:
		if !strings.Contains(s, want) {
			t.Fatalf("output %q ended without %q", s, want)
		}
		return s
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %q", want)
		return ""
	}
}

// waitGone fails unless pid exits (or is a zombie awaiting its reaper)
// within timeout.
func waitGone(t *testing.T, pid int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if !alive(pid) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("process %d still running after %s", pid, timeout)
}

func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true // no /proc: trust kill
	}
	// The state follows the parenthesised command name.
	s := string(stat)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(fields) == 0 || fields[0] != "Z"
}
