package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// lsEnv is one entry of `envd ls -o json`.
type lsEnv struct {
	Name      string `json:"name"`
	Status    string `json:"status"`
	Image     string `json:"image"`
	SSH       string `json:"ssh"`
	Endpoints []struct {
		ContainerPort int    `json:"container_port"`
		HostIP        string `json:"host_ip"`
		HostPort      int    `json:"host_port"`
	} `json:"endpoints"`
}

func listEnvs(t *testing.T) map[string]lsEnv {
	t.Helper()
	r := mustEnvd(t, t.TempDir(), "ls", "-o", "json")
	var envs []lsEnv
	if err := json.Unmarshal([]byte(r.stdout), &envs); err != nil {
		t.Fatalf("envd ls -o json: %v\n%s", err, r.stdout)
	}
	m := map[string]lsEnv{}
	for _, e := range envs {
		m[e.Name] = e
	}
	return m
}

// hostPortOf is where a container port of env is published.
func hostPortOf(t *testing.T, name string, containerPort int) string {
	t.Helper()
	for _, p := range listEnvs(t)[name].Endpoints {
		if p.ContainerPort == containerPort {
			return fmt.Sprintf("127.0.0.1:%d", p.HostPort)
		}
	}
	t.Fatalf("%s publishes no port %d", name, containerPort)
	return ""
}

// sshTarget reads the managed ssh config entry of an environment.
type sshTarget struct {
	addr, user string
	config     *ssh.ClientConfig
}

// dialEnv connects the way a user's ssh would: envd's key, and the host key
// pinned in envd's known_hosts (nothing is switched off).
func dialEnv(t *testing.T, name string, auth ...ssh.AuthMethod) (*ssh.Client, error) {
	t.Helper()
	out, err := exec.Command("ssh", "-G", "-F", filepath.Join(homeDir, ".ssh", "config"), name+".envd").Output()
	if err != nil {
		t.Fatalf("ssh -G: %v", err)
	}
	opts := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok {
			opts[k] = v
		}
	}
	if auth == nil {
		keyData, err := os.ReadFile(opts["identityfile"])
		if err != nil {
			t.Fatalf("identity file from the ssh config: %v", err)
		}
		signer, err := ssh.ParsePrivateKey(keyData)
		if err != nil {
			t.Fatal(err)
		}
		auth = []ssh.AuthMethod{ssh.PublicKeys(signer)}
	}
	hostKeys, err := knownhosts.New(opts["userknownhostsfile"])
	if err != nil {
		t.Fatalf("known_hosts from the ssh config: %v", err)
	}
	alias := opts["hostkeyalias"]
	cfg := &ssh.ClientConfig{
		User: opts["user"],
		Auth: auth,
		// Check the key under the alias the config names, as OpenSSH does.
		HostKeyCallback: func(_ string, remote net.Addr, key ssh.PublicKey) error {
			return hostKeys(alias+":22", remote, key)
		},
		Timeout: 10 * time.Second,
	}
	return ssh.Dial("tcp", opts["hostname"]+":"+opts["port"], cfg)
}

func sshRun(t *testing.T, c *ssh.Client, cmd string) (string, error) {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.CombinedOutput(cmd)
	return string(out), err
}

func httpGet(url string) (int, string, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String(), nil
}

// eventually retries f until it returns nil or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %s: %v", what, d, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestUpSSHDaemonAndDown is the whole life of an environment: up, ssh in
// with the generated key, write into the project, reach a daemon through
// its exposed port, restart it by killing it, exec, logs, down, destroy.
func TestUpSSHDaemonAndDown(t *testing.T) {
	requireE2E(t)
	srv := index(t, wheel{name: "alpha", version: "1.0"})
	dir := project(t, "e2e-up", map[string]string{
		"build.envd": fmt.Sprintf(`def build():
    base(os="debian12", language="python3")
    config.pip_index(url=%q, trust=True)
    install.python_packages(name=["alpha"])
    shell("bash")
    runtime.expose(envd_port=8000, service="web")
    runtime.daemon(commands=[["python3", "-m", "http.server", "8000"]])
`, srv.URL()),
		"hello.txt": "from the host\n",
	})
	name := "e2e-up"
	t.Cleanup(func() { envd(t, dir, "destroy", name) })

	// The user's own ssh config must survive byte for byte.
	sshConfig := filepath.Join(homeDir, ".ssh", "config")
	os.MkdirAll(filepath.Dir(sshConfig), 0o700)
	userConfig := "# my hosts\nInclude ~/.ssh/conf.d/*\n\nHost gpu-box\n  HostName 10.0.0.5\n  User me\n"
	if err := os.WriteFile(sshConfig, []byte(userConfig), 0o600); err != nil {
		t.Fatal(err)
	}

	r := mustEnvd(t, dir, "up", "--detach", "--progress", "plain")
	if !strings.Contains(r.stdout, "ssh "+name+".envd") {
		t.Errorf("up does not say how to ssh in:\n%s", r.stdout)
	}

	c, err := dialEnv(t, name)
	if err != nil {
		t.Fatalf("ssh with envd's key and pinned host key: %v", err)
	}
	defer c.Close()
	out, err := sshRun(t, c, "cat hello.txt && echo written-in-env > from-env.txt && id -u && python -c 'import alpha; print(alpha.__version__)' && echo $ENVD_NAME")
	if err != nil {
		t.Fatalf("command in the environment: %v\n%s", err, out)
	}
	if want := fmt.Sprintf("from the host\n%d\n1.0\n%s\n", os.Getuid(), name); out != want {
		t.Errorf("in the environment got %q, want %q", out, want)
	}
	st, err := os.Stat(filepath.Join(dir, "from-env.txt"))
	if err != nil {
		t.Fatalf("file written in the environment is not in the project: %v", err)
	}
	if uid := st.Sys().(*syscall.Stat_t).Uid; int(uid) != os.Getuid() {
		t.Errorf("file written in the environment is owned by %d, want the host user %d", uid, os.Getuid())
	}

	// The real OpenSSH client, through the managed entry, with no prompt.
	if out, err := exec.Command("ssh", "-F", sshConfig, "-o", "BatchMode=yes", name+".envd", "echo", "openssh-ok").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "openssh-ok" {
		t.Errorf("ssh %s.envd: %v\n%s", name, err, out)
	}
	// It went through envd (ProxyCommand), which finds the environment
	// wherever it is published: a wrong Port in the entry changes nothing.
	if cfg, _ := os.ReadFile(sshConfig); !strings.Contains(string(cfg), "ProxyCommand "+envdBin+" ssh --stdio "+name+"\n") {
		t.Errorf("the ssh entry has no ProxyCommand through %s:\n%s", envdBin, cfg)
	}
	if out, err := exec.Command("ssh", "-F", sshConfig, "-o", "BatchMode=yes", "-p", "1", name+".envd", "echo", "proxied").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "proxied" {
		t.Errorf("ssh -p 1 %s.envd (the port is not used with ProxyCommand): %v\n%s", name, err, out)
	}

	// Key only: a password and a stranger's key are refused.
	if _, err := dialEnv(t, name, ssh.Password("envd")); err == nil {
		t.Error("password login accepted")
	}
	stranger, _, _ := newSigner(t)
	if _, err := dialEnv(t, name, ssh.PublicKeys(stranger)); err == nil {
		t.Error("login with an unknown key accepted")
	}

	// The daemon answers on its exposed port, and comes back when killed.
	web := "http://" + hostPortOf(t, name, 8000) + "/hello.txt"
	eventually(t, 30*time.Second, "daemon answers", func() error {
		code, body, err := httpGet(web)
		if err == nil && (code != 200 || body != "from the host\n") {
			err = fmt.Errorf("status %d body %q", code, body)
		}
		return err
	})
	if out, err := sshRun(t, c, "pkill -f '^python3 -m http.server'"); err != nil {
		t.Fatalf("pkill: %v %s", err, out)
	}
	eventually(t, 30*time.Second, "daemon restarted", func() error {
		out, _ := sshRun(t, c, "cat ~/.local/state/envd/logs/status.json")
		if !strings.Contains(out, `"restarts": 1`) && !strings.Contains(out, `"restarts":1`) {
			return fmt.Errorf("status.json shows no restart: %s", out)
		}
		_, _, err := httpGet(web)
		return err
	})

	// exec passes the exit code through; logs shows the daemon's output.
	if r := envd(t, dir, "exec", name, "--", "sh", "-c", "exit 3"); r.code != 3 {
		t.Errorf("envd exec exit code %d, want 3", r.code)
	}
	if r := mustEnvd(t, dir, "exec", name, "--", "python", "-c", "print('exec', 'ok')"); strings.TrimSpace(r.stdout) != "exec ok" {
		t.Errorf("envd exec output %q", r.stdout)
	}
	if r := mustEnvd(t, dir, "logs", name, "web"); !strings.Contains(r.stdout, "GET /hello.txt") {
		t.Errorf("envd logs web lacks the request:\n%s", r.stdout)
	}

	// envd ssh: an interactive login shell on a PTY (script(1) gives envd a
	// terminal), with the prompt naming the environment.
	sh := exec.Command("script", "-qec", envdBin+" ssh "+name, "/dev/null")
	sh.Dir = dir
	sh.Stdin = strings.NewReader("echo answer-$((6*7))\nexit 5\n")
	out2, err := sh.CombinedOutput()
	if code := sh.ProcessState.ExitCode(); code != 5 || !strings.Contains(string(out2), "answer-42") || !strings.Contains(string(out2), "(envd:"+name+")") {
		t.Errorf("envd ssh on a terminal: exit %d (%v), output:\n%s", code, err, out2)
	}

	// up again: nothing to build, already running.
	again := mustEnvd(t, dir, "up", "--detach")
	if !strings.Contains(again.stdout, "already running") {
		t.Errorf("second up: %s", again)
	}

	mustEnvd(t, dir, "down")
	if _, ok := listEnvs(t)[name]; ok {
		t.Error("environment still listed after down")
	}
	if data, _ := os.ReadFile(sshConfig); string(data) != userConfig {
		t.Errorf("ssh config after down:\n%s\nwant the user's own, byte for byte:\n%s", data, userConfig)
	}
	if _, err := dockerCmd(t, "image", "inspect", name+":dev"); err != nil {
		t.Error("down removed the image")
	}
	mustEnvd(t, dir, "up", "--detach")
	mustEnvd(t, dir, "destroy")
	if _, err := dockerCmd(t, "image", "inspect", name+":dev"); err == nil {
		t.Error("destroy left the image")
	}
}

func newSigner(t *testing.T) (ssh.Signer, ssh.PublicKey, error) {
	t.Helper()
	dir := t.TempDir()
	key := filepath.Join(dir, "k")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	data, _ := os.ReadFile(key)
	s, err := ssh.ParsePrivateKey(data)
	if err != nil {
		t.Fatal(err)
	}
	return s, s.PublicKey(), nil
}

// TestUpFailuresLeaveNothing: each way `envd up` can fail says why, exits 1,
// and leaves no container and no ssh entry.
func TestUpFailuresLeaveNothing(t *testing.T) {
	requireE2E(t)
	// A port on the host that is taken.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := l.Addr().(*net.TCPAddr).Port

	tests := []struct {
		name, file string
		args       []string
		want       []string
	}{
		{
			name: "e2e-busy-port",
			file: fmt.Sprintf("def build():\n    base(os=\"debian12\", language=\"python3\")\n    runtime.expose(envd_port=8000, host_port=%d)\n", busy),
			want: []string{fmt.Sprintf("127.0.0.1:%d is already in use", busy), "hint:"},
		},
		{
			name: "e2e-not-dev",
			file: "def build():\n    base(image=\"debian:bookworm\")\n",
			want: []string{"build.envd:2:5", "needs a dev environment"},
		},
		{
			name: "e2e-no-such-daemon",
			file: "def build():\n    base(os=\"debian12\", language=\"python3\")\n    runtime.daemon(commands=[[\"no-such-server\", \"--port\", \"1\"]])\n",
			want: []string{"no-such-server", "not found"},
		},
		{
			name: "e2e-gpu",
			file: "def build():\n    base(os=\"debian12\", language=\"python3\")\n",
			args: []string{"--gpus", "all"},
			want: []string{"asks for GPUs, but Docker has no NVIDIA runtime", "--no-gpu"},
		},
		{
			name: "e2e-timeout",
			file: "def build():\n    base(os=\"debian12\", language=\"python3\")\n",
			args: []string{"--timeout", "1ms"},
			want: []string{"ssh did not answer within 1ms", "--timeout"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := project(t, tt.name, map[string]string{"build.envd": tt.file})
			t.Cleanup(func() { dockerCmd(t, "rmi", "-f", tt.name+":dev") })
			r := envd(t, dir, append([]string{"up", "--detach", "--progress", "quiet"}, tt.args...)...)
			if r.code != 1 {
				t.Fatalf("want exit 1: %s", r)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
			if out, err := dockerCmd(t, "inspect", "envd-"+tt.name); err == nil {
				t.Errorf("a container was left behind:\n%.300s", out)
			}
			if data, _ := os.ReadFile(filepath.Join(homeDir, ".ssh", "config")); strings.Contains(string(data), tt.name+".envd") {
				t.Errorf("an ssh entry was left behind:\n%s", data)
			}
		})
	}
}

// TestUpNameTaken: a container of that name that envd did not make is
// never touched.
func TestUpNameTaken(t *testing.T) {
	requireE2E(t)
	if out, err := dockerCmd(t, "create", "--name", "envd-e2e-taken", "debian:bookworm", "true"); err != nil {
		t.Fatalf("docker create: %v %s", err, out)
	}
	t.Cleanup(func() { dockerCmd(t, "rm", "-f", "envd-e2e-taken") })
	dir := project(t, "e2e-taken", map[string]string{"build.envd": "def build():\n    base(os=\"debian12\", language=\"python3\")\n"})
	r := envd(t, dir, "up", "--detach", "--progress", "quiet")
	if r.code != 1 || !strings.Contains(r.stderr, "not made by envd") {
		t.Errorf("want a refusal naming the foreign container: %s", r)
	}
	if out, err := dockerCmd(t, "inspect", "-f", "{{.Config.Image}}", "envd-e2e-taken"); err != nil || strings.TrimSpace(out) != "debian:bookworm" {
		t.Errorf("the foreign container was changed: %v %s", err, out)
	}
}

// TestJupyter: config.jupyter() serves JupyterLab (from PyPI) on a loopback
// port, with a token: the URL envd prints works, the API without it is 403.
// Its port is the one on this machine, as in the original envd.
func TestJupyter(t *testing.T) {
	requireE2E(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir := project(t, "e2e-jupyter", map[string]string{"build.envd": fmt.Sprintf(`def build():
    base(os="debian12", language="python3")
    config.jupyter(port=%d)
`, port)})
	t.Cleanup(func() { envd(t, dir, "destroy") })
	r := mustEnvd(t, dir, "up", "--detach", "--progress", "quiet")
	base := checkJupyter(t, r.stdout)
	if want := fmt.Sprintf("http://127.0.0.1:%d", port); base != want {
		t.Errorf("Jupyter is at %s, want config.jupyter's port: %s", base, want)
	}
	if code, _, err := httpGet(base + "/api/status?token=wrong"); err != nil || code != 403 {
		t.Errorf("with a wrong token: status %d, %v; want 403", code, err)
	}
}

// checkJupyter finds the Jupyter URL envd up printed, waits until Jupyter
// answers with its token, checks it refuses a request without, and returns
// the URL's base.
func checkJupyter(t *testing.T, stdout string) string {
	t.Helper()
	var lab string
	for _, line := range strings.Split(stdout, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "jupyter" {
			lab = f[1]
		}
	}
	base, token, ok := strings.Cut(lab, "/lab?token=")
	if !ok || !strings.HasPrefix(base, "http://127.0.0.1:") || len(token) < 32 {
		t.Fatalf("up printed no loopback Jupyter URL with a token:\n%s", stdout)
	}
	eventually(t, 90*time.Second, "jupyter answers with the token", func() error {
		code, body, err := httpGet(base + "/api/status?token=" + token)
		if err == nil && code != 200 {
			err = fmt.Errorf("status %d: %.200s", code, body)
		}
		return err
	})
	if code, _, err := httpGet(base + "/api/status"); err != nil || code != 403 {
		t.Errorf("without the token: status %d, %v; want 403", code, err)
	}
	return base
}
