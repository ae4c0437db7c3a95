package e2e

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"envd.dev/envd/internal/testing/sshtest"
)

// TestTrustSecrets: what another local user can learn of an environment
// with Jupyter. A second real account (uid 23457) reads every process's
// command line and tries envd's state files; the fixed Jupyter token is in
// none of them, nor in the image's labels, yet Jupyter takes it. sshd refuses
// SHA-1 key exchange and MACs and any user name but the environment's, and
// the user's ssh-agent is not forwarded unless `envd up --forward-agent`.
func TestTrustSecrets(t *testing.T) {
	requireE2E(t)
	other := newOtherUser(t, 23457)
	const token = "trust-fixed-token-6f1d0c9a2b7e"
	name := "trust-secrets"
	dir := project(t, name, map[string]string{"build.envd": fmt.Sprintf(`def build():
    base(os="debian12", language="python3")
    config.jupyter(token=%q)
`, token)})
	t.Cleanup(func() { envd(t, dir, "destroy", name) })
	r := mustEnvd(t, dir, "up", "--detach", "--progress", "quiet")
	// envd's XDG dirs and HOME are as reachable as in a home of mode 0755:
	// only envd's own modes keep the other user out.
	openForTraversal(t, stateDir, filepath.Join(stateDir, "config"), filepath.Join(stateDir, "data"), homeDir)
	var lab string
	for _, line := range strings.Split(r.stdout, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "jupyter" {
			lab = f[1]
		}
	}
	base, got, ok := strings.Cut(lab, "/lab?token=")
	if !ok || got != token {
		t.Fatalf("up printed no Jupyter URL with the fixed token:\n%s", r.stdout)
	}
	// The token reached Jupyter, though not through its image or argv.
	eventually(t, 120*time.Second, "jupyter answers with the fixed token", func() error {
		code, body, err := httpGet(base + "/api/status?token=" + token)
		if err == nil && code != 200 {
			err = fmt.Errorf("status %d: %.200s", code, body)
		}
		return err
	})

	t.Run("no argv holds the token", func(t *testing.T) {
		out, _, err := other.sh(`for f in /proc/[0-9]*/cmdline; do tr '\0' ' ' < "$f" 2>/dev/null; echo; done`)
		if err != nil {
			t.Fatalf("reading /proc/*/cmdline as %s: %v", other.name, err)
		}
		if !strings.Contains(out, "jupyter lab") && !strings.Contains(out, "jupyter-lab") {
			t.Fatalf("%s does not see Jupyter's process, so the check means nothing:\n%s", other.name, out)
		}
		if strings.Contains(out, token) {
			t.Errorf("%s reads the token in a command line:\n%s", other.name, grepLines(out, token))
		}
		// Jupyter's environment holds it, readable by root (its owner) only.
		env, _, _ := other.sh(`cat /proc/[0-9]*/environ 2>/dev/null | tr '\0' '\n'`)
		if strings.Contains(env, token) {
			t.Errorf("%s reads the token in a process's environment", other.name)
		}
		rootEnv, _ := exec.Command("sh", "-c", `cat /proc/[0-9]*/environ 2>/dev/null | tr '\0' '\n'`).Output()
		if !strings.Contains(string(rootEnv), "JUPYTER_TOKEN="+token) {
			t.Error("no process has JUPYTER_TOKEN in its environment: how did Jupyter get the token?")
		}
	})

	t.Run("no image label holds the token", func(t *testing.T) {
		out, err := dockerCmd(t, "image", "inspect", "--format", "{{json .Config.Labels}}", name+":dev")
		if err != nil {
			t.Fatalf("docker image inspect: %v\n%s", err, out)
		}
		if !strings.Contains(out, "dev.envd.environment") || !strings.Contains(out, `jupyter`) {
			t.Fatalf("labels lack the environment, so the check means nothing: %s", out)
		}
		if strings.Contains(out, token) {
			t.Errorf("an image label holds the Jupyter token: %s", out)
		}
	})

	t.Run("state files are the owner's only", func(t *testing.T) {
		state := filepath.Join(stateDir, "data", "envd", "envs", name)
		agentJSON, err := os.ReadFile(filepath.Join(state, "agent.json"))
		if err != nil || !strings.Contains(string(agentJSON), token) {
			t.Fatalf("agent.json (%v) does not hold the token, so the check means nothing", err)
		}
		// Open the way to the state dir, not the dir itself.
		openForTraversal(t, parents(filepath.Dir(state), filepath.Join(stateDir, "data"))...)
		secret := map[string]bool{} // envd's files another user must not read
		for _, root := range []string{filepath.Join(stateDir, "config", "envd"), filepath.Join(stateDir, "data", "envd", "envs")} {
			filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
				if err != nil {
					t.Errorf("%s: %v", path, err)
					return nil
				}
				if d.Type().IsRegular() && (strings.HasPrefix(path, state) || d.Name() == "id_ed25519") {
					secret[path] = true
				}
				return nil
			})
		}
		for _, f := range []string{"agent.json", "authorized_keys", "ssh_host_ed25519_key"} {
			if !secret[filepath.Join(state, f)] {
				t.Errorf("%s is missing from the state dir", f)
			}
		}
		for path := range secret {
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm()&0o077 != 0 {
				t.Errorf("%s has mode %v: others may read it", path, fi.Mode().Perm())
			}
			if other.canRead(path) {
				t.Errorf("%s can read %s", other.name, path)
			}
		}
		if fi, err := os.Stat(state); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("state dir %s: %v, want mode 0700", state, err)
		}
		if _, _, err := other.run("ls", state); err == nil {
			t.Errorf("%s can list %s", other.name, state)
		}
	})

	sshConfig := filepath.Join(homeDir, ".ssh", "config")
	openssh := func(args ...string) (string, error) {
		full := append([]string{"-F", sshConfig, "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"}, args...)
		out, err := exec.Command("ssh", full...).CombinedOutput()
		return string(out), err
	}
	t.Run("sshd offers no SHA-1 and takes the environment's user only", func(t *testing.T) {
		if out, err := openssh(name+".envd", "echo", "ok"); err != nil || strings.TrimSpace(out) != "ok" {
			t.Fatalf("ssh %s.envd with the managed entry: %v\n%s", name, err, out)
		}
		for _, tt := range []struct {
			what string
			opts []string
			want string
		}{
			{"kex diffie-hellman-group14-sha1", []string{"-o", "KexAlgorithms=diffie-hellman-group14-sha1"}, "no matching key exchange method"},
			{"mac hmac-sha1", []string{"-o", "Ciphers=aes128-ctr", "-o", "MACs=hmac-sha1"}, "no matching MAC"},
			{"user nobody", []string{"-l", "nobody"}, "Permission denied"},
			{"the other of root and envd", []string{"-l", map[bool]string{true: "envd", false: "root"}[os.Getuid() == 0]}, "Permission denied"},
		} {
			out, err := openssh(append(tt.opts, name+".envd", "true")...)
			if err == nil || !strings.Contains(out, tt.want) {
				t.Errorf("ssh %s: %v, want refused (%q):\n%s", tt.what, err, tt.want, out)
			}
		}
		// What the MAC case offers alone still works with a modern MAC.
		if out, err := openssh("-o", "Ciphers=aes128-ctr", "-o", "MACs=hmac-sha2-256-etm@openssh.com", name+".envd", "true"); err != nil {
			t.Errorf("ssh with aes128-ctr and hmac-sha2-256-etm: %v\n%s", err, out)
		}
	})

	t.Run("ssh-agent forwarded only when asked", func(t *testing.T) {
		t.Setenv("SSH_AUTH_SOCK", sshtest.ServeAgent(t))
		probe := `if test -S "$SSH_AUTH_SOCK"; then echo forwarded; else echo none; fi`
		check := func(want string) {
			t.Helper()
			block := envdBlock(t, sshConfig, name)
			if wantLine := map[string]string{"none": "ForwardAgent no", "forwarded": "ForwardAgent yes"}[want]; !strings.Contains(block, wantLine) {
				t.Errorf("ssh config block lacks %q:\n%s", wantLine, block)
			}
			if out, err := openssh(name+".envd", probe); err != nil || strings.TrimSpace(out) != want {
				t.Errorf("OpenSSH through the entry: %v, %q; want %s", err, out, want)
			}
			if r := mustEnvd(t, dir, "exec", name, "--", "sh", "-c", probe); strings.TrimSpace(r.stdout) != want {
				t.Errorf("envd exec: %q, want %s", r.stdout, want)
			}
		}
		check("none")
		mustEnvd(t, dir, "up", "--detach", "--force", "--forward-agent", "--progress", "quiet")
		check("forwarded")
	})
}

// envdBlock is environment name's managed block in the ssh config.
func envdBlock(t *testing.T, path, name string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(data), "# BEGIN envd "+name+" ")
	block, _, ok2 := strings.Cut(rest, "# END envd "+name)
	if !ok || !ok2 {
		t.Fatalf("no envd block for %s in %s:\n%s", name, path, data)
	}
	return block
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
