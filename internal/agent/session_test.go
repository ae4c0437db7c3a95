//go:build unix

package agent

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

func TestExec(t *testing.T) {
	ts := newTestServer(t)
	c := ts.mustDial(t)
	tests := []struct {
		name       string
		cmd        string
		wantOut    string
		wantErrOut string
		wantCode   int
	}{
		{"output", "echo hello", "hello\n", "", 0},
		{"stderr", "echo oops >&2", "", "oops\n", 0},
		{"exit code", "exit 3", "", "", 3},
		{"killed by signal", "kill -9 $$", "", "", 128 + 9},
		{"missing command", "no-such-command-envd", "", "", 127},
		{"stdin is empty", "cat; echo done", "done\n", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := run(t, c, tt.cmd)
			if out != tt.wantOut || code != tt.wantCode {
				t.Errorf("stdout %q, exit %d; want %q, %d", out, code, tt.wantOut, tt.wantCode)
			}
			if tt.wantErrOut != "" && errOut != tt.wantErrOut {
				t.Errorf("stderr %q, want %q", errOut, tt.wantErrOut)
			}
		})
	}
}

func TestExecWithoutShellIsInternalError(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.SSH.Shell = "/no/such/shell" })
	_, errOut, code := run(t, ts.mustDial(t), "true")
	if code != exitInternal || !strings.Contains(errOut, "/no/such/shell") {
		t.Fatalf("exit %d, stderr %q; want %d and the shell named", code, errOut, exitInternal)
	}
}

func TestSessionEnvAndWorkdir(t *testing.T) {
	ts := newTestServer(t)
	c := ts.mustDial(t)
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if err := sess.Setenv("ENVD_CLIENT_VAR", "from-client"); err != nil {
		t.Fatalf("env request refused: %v", err)
	}
	out, err := sess.Output(`pwd; echo "$ENVD_CLIENT_VAR $ENVD_CONFIG_VAR"; echo "$USER|$HOME|$SHELL"; echo "$PATH"; echo "$SSH_CONNECTION"`)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 5 {
		t.Fatalf("output %q", out)
	}
	if lines[0] != ts.cfg.Workdir {
		t.Errorf("pwd = %q, want %q", lines[0], ts.cfg.Workdir)
	}
	if lines[1] != "from-client from-config" {
		t.Errorf("env = %q", lines[1])
	}
	if user, home, _ := strings.Cut(lines[2], "|"); user == "" || home == "" || !strings.HasSuffix(lines[2], "|/bin/sh") {
		t.Errorf("USER|HOME|SHELL = %q", lines[2])
	}
	if lines[3] != os.Getenv("PATH") {
		t.Errorf("PATH = %q, want the container's %q", lines[3], os.Getenv("PATH"))
	}
	if !strings.HasPrefix(lines[4], "127.0.0.1 ") {
		t.Errorf("SSH_CONNECTION = %q", lines[4])
	}
}

func TestPTY(t *testing.T) {
	ts := newTestServer(t)
	c := ts.mustDial(t)

	t.Run("initial size, TERM and a terminal", func(t *testing.T) {
		sess := newPTYSession(t, c, 24, 80)
		out, err := sess.Output(`stty size; echo "$TERM"; tty`)
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Fields(string(out))
		if len(got) != 4 || got[0] != "24" || got[1] != "80" || got[2] != "xterm-256color" || !strings.HasPrefix(got[3], "/dev/pts/") {
			t.Fatalf("output %q", out)
		}
	})

	t.Run("window change", func(t *testing.T) {
		sess := newPTYSession(t, c, 24, 80)
		stdout, _ := sess.StdoutPipe()
		if err := sess.Start("echo started; while sleep 0.02; do stty size; done"); err != nil {
			t.Fatal(err)
		}
		readUntil(t, stdout, "started")
		if err := sess.WindowChange(40, 120); err != nil {
			t.Fatal(err)
		}
		readUntil(t, stdout, "40 120")
	})

	t.Run("output is not rewritten", func(t *testing.T) {
		// With onlcr off a program's bare "\n" must reach the client as is.
		sess := newPTYSession(t, c, 24, 80)
		out, err := sess.Output(`stty -onlcr; printf 'a\nb\n'`)
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != "a\nb\n" {
			t.Fatalf("output %q, want %q", out, "a\nb\n")
		}
	})

	t.Run("exit status", func(t *testing.T) {
		sess := newPTYSession(t, c, 24, 80)
		var out bytes.Buffer
		sess.Stdout = &out
		if code := exitStatus(t, sess.Run("exit 4"), &out, &out); code != 4 {
			t.Fatalf("exit %d, want 4", code)
		}
	})
}

func newPTYSession(t *testing.T, c *gossh.Client, rows, cols int) *gossh.Session {
	t.Helper()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sess.Close() })
	if err := sess.RequestPty("xterm-256color", rows, cols, gossh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	return sess
}

func TestSignalForwarded(t *testing.T) {
	ts := newTestServer(t)
	c := ts.mustDial(t)
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	stdout, _ := sess.StdoutPipe()
	if err := sess.Start("trap 'echo got TERM; exit 7' TERM; echo ready; while :; do sleep 0.02; done"); err != nil {
		t.Fatal(err)
	}
	readUntil(t, stdout, "ready")
	if err := sess.Signal(gossh.SIGTERM); err != nil {
		t.Fatal(err)
	}
	readUntil(t, stdout, "got TERM")
	var exitErr *gossh.ExitError
	if err := sess.Wait(); !errors.As(err, &exitErr) || exitErr.ExitStatus() != 7 {
		t.Fatalf("Wait = %v, want exit status 7", err)
	}
}

// A session's processes must not outlive it, however it ends.
func TestNoOrphans(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("needs bash for an interactive shell")
	}
	ts := newTestServer(t, func(c *Config) { c.SSH.Shell = bash })

	tests := []struct {
		name  string
		pty   bool
		cmd   string // prints "pid <n>" of the process that must die
		close func(*gossh.Client, *gossh.Session)
	}{
		{"exec, connection closed", false, `echo pid $$; exec sleep 1000`,
			func(c *gossh.Client, _ *gossh.Session) { _ = c.Close() }},
		{"exec, channel closed", false, `echo pid $$; exec sleep 1000`,
			func(_ *gossh.Client, s *gossh.Session) { _ = s.Close() }},
		{"exec, background child", false, `sleep 1000 & echo pid $!; wait`,
			func(c *gossh.Client, _ *gossh.Session) { _ = c.Close() }},
		// An interactive shell puts its job in its own process group; the
		// hang-up makes the shell pass SIGHUP on to it.
		{"interactive shell job", true, "",
			func(c *gossh.Client, _ *gossh.Session) { _ = c.Close() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ts.dial(t)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			sess, err := c.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			stdout, _ := sess.StdoutPipe()
			stdin, _ := sess.StdinPipe()
			if tt.pty {
				if err := sess.RequestPty("xterm", 24, 80, gossh.TerminalModes{}); err != nil {
					t.Fatal(err)
				}
				if err := sess.Shell(); err != nil {
					t.Fatal(err)
				}
				// "re""ady" so that the terminal's echo of the line does not match
				_, _ = stdin.Write([]byte("sleep 1000 & echo pid $!; echo re\"\"ady\n"))
			} else if err := sess.Start(tt.cmd); err != nil {
				t.Fatal(err)
			}
			out := readUntil(t, stdout, "\n")
			if tt.pty {
				out = readUntil(t, stdout, "ready")
			}
			pid := parsePID(t, out)
			t.Cleanup(func() {
				if t.Failed() {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			})
			if !alive(pid) {
				t.Fatalf("process %d not running before the session ends", pid)
			}
			tt.close(c, sess)
			waitGone(t, pid, 3*time.Second)
		})
	}
}

func parsePID(t *testing.T, out string) int {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		// the terminal echoes the command line too; take the printed value
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "pid "); ok {
			if pid, err := strconv.Atoi(rest); err == nil {
				return pid
			}
		}
	}
	t.Fatalf("no pid in %q", out)
	return 0
}

func TestAgentForwarding(t *testing.T) {
	if _, err := exec.LookPath("ssh-add"); err != nil {
		t.Skip("no ssh-add")
	}
	ts := newTestServer(t)
	c := ts.mustDial(t)
	keyring := agent.NewKeyring()
	data, err := os.ReadFile(ts.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := gossh.ParseRawPrivateKey(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := keyring.Add(agent.AddedKey{PrivateKey: raw}); err != nil {
		t.Fatal(err)
	}
	if err := agent.ForwardToAgent(c, keyring); err != nil {
		t.Fatal(err)
	}
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if err := agent.RequestAgentForwarding(sess); err != nil {
		t.Fatal(err)
	}
	out, err := sess.CombinedOutput(`test -S "$SSH_AUTH_SOCK" && ssh-add -l`)
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if want := gossh.FingerprintSHA256(ts.client.PublicKey()); !strings.Contains(string(out), want) {
		t.Fatalf("ssh-add -l = %q, want %s", out, want)
	}
}
