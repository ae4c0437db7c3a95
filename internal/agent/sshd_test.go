//go:build unix

package agent

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
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

// sshd accepts the environment's user only, whatever key is offered.
func TestOnlyTheEnvironmentsUser(t *testing.T) {
	ts := newTestServer(t)
	for _, tt := range []struct {
		user string
		ok   bool
	}{{"envd", true}, {"root", false}, {"nobody", false}, {"", false}, {"Envd", false}} {
		t.Run("user "+tt.user, func(t *testing.T) {
			c, err := gossh.Dial("tcp", ts.addr, &gossh.ClientConfig{
				User: tt.user, Auth: []gossh.AuthMethod{gossh.PublicKeys(ts.client)},
				HostKeyCallback: gossh.FixedHostKey(ts.hostKey), Timeout: 5 * time.Second,
			})
			if c != nil {
				_ = c.Close()
			}
			if (err == nil) != tt.ok {
				t.Fatalf("login as %q: err = %v, want accepted: %v", tt.user, err, tt.ok)
			}
		})
	}
}

func TestLoginUser(t *testing.T) {
	me, _ := identity()
	for _, tt := range []struct {
		name string
		user *User
		want string
	}{
		{"no user: whoever the agent runs as", nil, me},
		{"the configured account", &User{Name: "envd", UID: os.Getuid(), Home: "/home/envd"}, "envd"},
		{"root stays root", &User{Name: "root", UID: 0, Home: "/root"}, map[bool]string{true: "root", false: me}[os.Getuid() == 0]},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := (&Config{User: tt.user}).LoginUser(); got != tt.want {
				t.Errorf("LoginUser() = %q, want %q", got, tt.want)
			}
		})
	}
}

// No SHA-1 and no weak cipher is offered, for the host key either; what
// modern clients use still works.
func TestModernAlgorithmsOnly(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaPEM, err := gossh.MarshalPrivateKey(rsaKey, "")
	if err != nil {
		t.Fatal(err)
	}
	rsaSigner, err := gossh.NewSignerFromKey(rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t)
	rsaHost := filepath.Join(t.TempDir(), "rsa_host_key")
	writeFile(t, rsaHost, pem.EncodeToMemory(rsaPEM))
	tsRSA := newTestServer(t, func(c *Config) { c.SSH.HostKey = rsaHost })
	tsRSA.hostKey = rsaSigner.PublicKey()
	writeFile(t, ts.authKeys, append(gossh.MarshalAuthorizedKey(ts.client.PublicKey()), gossh.MarshalAuthorizedKey(rsaSigner.PublicKey())...))
	rsaSHA1, err := gossh.NewSignerWithAlgorithms(rsaSigner.(gossh.AlgorithmSigner), []string{gossh.KeyAlgoRSA})
	if err != nil {
		t.Fatal(err)
	}
	rsaSHA2, err := gossh.NewSignerWithAlgorithms(rsaSigner.(gossh.AlgorithmSigner), []string{gossh.KeyAlgoRSASHA256})
	if err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct {
		name   string
		server *testServer
		edit   func(*gossh.ClientConfig)
		ok     bool // else refused: no common algorithm, or (for keys) not authenticated
	}{
		{"defaults", ts, func(*gossh.ClientConfig) {}, true},
		{"kex diffie-hellman-group14-sha1", ts, func(c *gossh.ClientConfig) { c.KeyExchanges = []string{gossh.InsecureKeyExchangeDH14SHA1} }, false},
		{"kex diffie-hellman-group1-sha1", ts, func(c *gossh.ClientConfig) { c.KeyExchanges = []string{gossh.InsecureKeyExchangeDH1SHA1} }, false},
		{"kex diffie-hellman-group14-sha256", ts, func(c *gossh.ClientConfig) { c.KeyExchanges = []string{gossh.KeyExchangeDH14SHA256} }, false},
		{"kex curve25519-sha256", ts, func(c *gossh.ClientConfig) { c.KeyExchanges = []string{gossh.KeyExchangeCurve25519} }, true},
		{"kex ecdh-sha2-nistp256", ts, func(c *gossh.ClientConfig) { c.KeyExchanges = []string{gossh.KeyExchangeECDHP256} }, true},
		{"mac hmac-sha1", ts, func(c *gossh.ClientConfig) {
			c.Ciphers, c.MACs = []string{gossh.CipherAES128CTR}, []string{gossh.HMACSHA1}
		}, false},
		{"mac hmac-sha1-96", ts, func(c *gossh.ClientConfig) {
			c.Ciphers, c.MACs = []string{gossh.CipherAES128CTR}, []string{gossh.InsecureHMACSHA196}
		}, false},
		{"mac hmac-sha2-256-etm", ts, func(c *gossh.ClientConfig) {
			c.Ciphers, c.MACs = []string{gossh.CipherAES128CTR}, []string{gossh.HMACSHA256ETM}
		}, true},
		{"cipher aes128-cbc", ts, func(c *gossh.ClientConfig) { c.Ciphers = []string{gossh.InsecureCipherAES128CBC} }, false},
		{"cipher chacha20-poly1305", ts, func(c *gossh.ClientConfig) { c.Ciphers = []string{gossh.CipherChaCha20Poly1305} }, true},
		{"user key signed with ssh-rsa (SHA-1)", ts, func(c *gossh.ClientConfig) { c.Auth = []gossh.AuthMethod{gossh.PublicKeys(rsaSHA1)} }, false},
		{"user key signed with rsa-sha2-256", ts, func(c *gossh.ClientConfig) { c.Auth = []gossh.AuthMethod{gossh.PublicKeys(rsaSHA2)} }, true},
		{"RSA host key as ssh-rsa (SHA-1)", tsRSA, func(c *gossh.ClientConfig) { c.HostKeyAlgorithms = []string{gossh.KeyAlgoRSA} }, false},
		{"RSA host key as rsa-sha2-512", tsRSA, func(c *gossh.ClientConfig) { c.HostKeyAlgorithms = []string{gossh.KeyAlgoRSASHA512} }, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &gossh.ClientConfig{
				User: "envd", Auth: []gossh.AuthMethod{gossh.PublicKeys(tt.server.client)},
				HostKeyCallback: gossh.FixedHostKey(tt.server.hostKey), Timeout: 5 * time.Second,
			}
			tt.edit(cfg)
			c, err := gossh.Dial("tcp", tt.server.addr, cfg)
			if err == nil {
				_, _, code := run(t, c, "true")
				_ = c.Close()
				if code != 0 {
					t.Fatalf("command exit %d", code)
				}
			}
			if (err == nil) != tt.ok {
				t.Fatalf("dial: err = %v, want accepted: %v", err, tt.ok)
			}
			if err != nil && !strings.Contains(err.Error(), "no common algorithm") && !strings.Contains(err.Error(), "unable to authenticate") {
				t.Fatalf("dial: err = %v, want no common algorithm or an authentication failure", err)
			}
		})
	}
}
