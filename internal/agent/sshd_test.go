//go:build unix

package agent

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"envd.dev/envd/internal/testing/sshtest"
)

func TestAuth(t *testing.T) {
	ts := newTestServer(t)
	other, _ := sshtest.NewKey(t)

	tests := []struct {
		name    string
		auth    []gossh.AuthMethod
		wantErr bool
	}{
		{"authorized key", []gossh.AuthMethod{gossh.PublicKeys(ts.client)}, false},
		{"unknown key", []gossh.AuthMethod{gossh.PublicKeys(other)}, true},
		{"password", []gossh.AuthMethod{gossh.Password("envd")}, true},
		{"keyboard-interactive", []gossh.AuthMethod{gossh.KeyboardInteractive(
			func(string, string, []string, []bool) ([]string, error) { return nil, nil })}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ts.dial(t, tt.auth...)
			if c != nil {
				_ = c.Close()
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("dial error = %v, want error: %v", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "unable to authenticate") {
				t.Fatalf("dial error = %v, want an authentication failure", err)
			}
		})
	}

	t.Run("keys are re-read on each login", func(t *testing.T) {
		writeFile(t, ts.authKeys, append([]byte("# rotated\n"), gossh.MarshalAuthorizedKey(other.PublicKey())...))
		if c, err := ts.dial(t, gossh.PublicKeys(other)); err != nil {
			t.Fatalf("new key refused: %v", err)
		} else {
			_ = c.Close()
		}
		if c, err := ts.dial(t); err == nil {
			_ = c.Close()
			t.Fatal("removed key still accepted")
		}
	})
}

func TestNewServerErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "garbage"), []byte("not a key"))
	tests := []struct {
		name              string
		hostKey           string
		expectErrContains string
	}{
		{"missing host key", filepath.Join(dir, "nope"), "ssh host key: open"},
		{"unparsable host key", filepath.Join(dir, "garbage"), "ssh host key " + filepath.Join(dir, "garbage")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &Config{SSH: SSHConfig{HostKey: tt.hostKey, AuthorizedKeys: filepath.Join(dir, "ak")}}
			_, err := NewServer(cfg, testLogger(t))
			if err == nil || !strings.Contains(err.Error(), tt.expectErrContains) {
				t.Fatalf("NewServer error = %v, want it to contain %q", err, tt.expectErrContains)
			}
		})
	}
}

// The server must work with the client users and VS Code actually run.
func TestOpenSSHClient(t *testing.T) {
	sshBin, err := exec.LookPath("ssh")
	if err != nil {
		t.Skip("no OpenSSH client")
	}
	ts := newTestServer(t)
	host, port, _ := strings.Cut(ts.addr, ":")
	knownHosts := filepath.Join(ts.dir, "known_hosts")
	writeFile(t, knownHosts, []byte("["+host+"]:"+port+" "+string(gossh.MarshalAuthorizedKey(ts.hostKey))))
	opts := []string{
		"-F", "/dev/null",
		"-o", "UserKnownHostsFile=" + knownHosts,
		"-o", "StrictHostKeyChecking=yes",
		"-o", "BatchMode=yes",
		"-o", "IdentitiesOnly=yes",
		"-o", "ConnectTimeout=5",
		"-i", ts.keyFile,
	}

	cmd := exec.Command(sshBin, append(opts, "-p", port, "envd@"+host, "echo hello from $USER in $(pwd); exit 5")...)
	out, err := cmd.CombinedOutput()
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 5 {
		t.Fatalf("ssh: %v, output:\n%s", err, out)
	}
	if !strings.Contains(string(out), "hello from ") || !strings.Contains(string(out), ts.cfg.Workdir) {
		t.Fatalf("ssh output = %q", out)
	}

	// scp speaks sftp since OpenSSH 9.0.
	scpBin, err := exec.LookPath("scp")
	if err != nil {
		return
	}
	src := filepath.Join(ts.dir, "src.txt")
	writeFile(t, src, []byte("copied by scp\n"))
	out, err = exec.Command(scpBin, append(opts, "-P", port, src, "envd@"+host+":copied.txt")...).CombinedOutput()
	if err != nil {
		t.Fatalf("scp: %v\n%s", err, out)
	}
	got, err := os.ReadFile(filepath.Join(ts.cfg.Workdir, "copied.txt"))
	if err != nil || string(got) != "copied by scp\n" {
		t.Fatalf("scp result = %q, %v", got, err)
	}
}

func TestCloseEndsSessions(t *testing.T) {
	ts := newTestServer(t)
	c := ts.mustDial(t)
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	stdout, _ := sess.StdoutPipe()
	if err := sess.Start("echo $$; exec sleep 1000"); err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(readUntil(t, stdout, "\n")))
	t.Cleanup(func() {
		if t.Failed() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})

	start := time.Now()
	if err := ts.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Close took %s", d)
	}
	waitGone(t, pid, time.Second)
	if err := sess.Wait(); err == nil {
		t.Error("session ended cleanly after the server closed")
	}
	if _, err := ts.dial(t); err == nil {
		t.Error("closed server accepted a connection")
	}
}
