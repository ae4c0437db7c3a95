package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"envd.dev/envd/internal/buildkitd"
	"envd.dev/envd/internal/compile"
)

// podmanUser is a user who is not root and not in the docker group, with
// their own rootless Podman service, as a Podman user on a laptop has.
type podmanUser struct {
	*dockerUser
	socket string
}

// newPodmanUser adds the account with a subordinate ID range, starts its
// `podman system service` (no systemd here) and, at cleanup, stops it and
// every process Podman left for that user, by PID.
func newPodmanUser(t *testing.T, uid int) *podmanUser {
	t.Helper()
	if _, err := exec.LookPath("podman"); err != nil {
		t.Fatalf("podman is not installed (scripts/setup.sh installs it): %v", err)
	}
	u := newLocalUser(t, uid)
	first := 300000 + (uid%100)*65536
	ids := fmt.Sprintf("%d-%d", first, first+65535)
	if out, err := exec.Command("usermod", "--add-subuids", ids, "--add-subgids", ids, u.name).CombinedOutput(); err != nil {
		t.Fatalf("usermod --add-subuids %s: %v\n%s", ids, err, out)
	}
	run := fmt.Sprintf("/run/user/%d", uid)
	if _, err := os.Stat("/run/user"); err != nil {
		// Made here, as a fresh machine has none: everyone must be able
		// to pass through it (MkdirAll would make it 0700, root's only).
		if err := os.Mkdir("/run/user", 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove("/run/user") }) // after the user's
	}
	os.MkdirAll(filepath.Join(run, "podman"), 0o700)
	exec.Command("chown", "-R", fmt.Sprintf("%d:%d", uid, u.gid), run).Run()
	u.env = []string{"XDG_RUNTIME_DIR=" + run}
	// This machine gives /dev/fuse to root only, so Podman would fall back
	// to vfs (fuse-overlayfs cannot run); the kernel's own overlay works
	// for a user namespace. A stock Debian gets overlay by itself.
	conf := filepath.Join(u.home, ".config", "containers")
	os.MkdirAll(conf, 0o755)
	os.WriteFile(filepath.Join(conf, "storage.conf"), []byte("[storage]\ndriver = \"overlay\"\n"), 0o644)
	exec.Command("chown", "-R", fmt.Sprintf("%d:%d", uid, u.gid), filepath.Join(u.home, ".config")).Run()

	p := &podmanUser{dockerUser: u, socket: filepath.Join(run, "podman", "podman.sock")}
	args := append([]string{"--reuid=" + strconv.Itoa(uid), "--regid=" + strconv.Itoa(u.gid), "--init-groups", "--"},
		"podman", "system", "service", "--time=0", "unix://"+p.socket)
	svc := exec.Command("setpriv", args...)
	svc.Env = append([]string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + u.home, "USER=" + u.name}, u.env...)
	svc.Dir = u.home
	log, _ := os.Create(filepath.Join(t.TempDir(), "podman-service.log"))
	svc.Stdout, svc.Stderr = log, log
	if err := svc.Start(); err != nil {
		t.Fatalf("podman system service: %v", err)
	}
	exited := make(chan struct{})
	go func() { svc.Wait(); close(exited) }()
	// Cleanups run last-in first-out: this one runs before the account
	// goes (newLocalUser's), and after the test's own.
	t.Cleanup(func() {
		svc.Process.Kill()
		<-exited
		// Rootless Podman leaves its pause process (it holds the user
		// namespace) and conmon for each container; they are this user's.
		out, _ := exec.Command("pgrep", "-u", strconv.Itoa(uid)).Output()
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(200 * time.Millisecond)
		os.RemoveAll(run)
		if b, _ := os.ReadFile(log.Name()); t.Failed() {
			t.Logf("podman system service log:\n%s", lastLines(string(b), 30))
		}
	})
	waitForService(t, p.socket, exited, log.Name())
	return p
}

// podman runs podman as the user.
func (p *podmanUser) podman(t *testing.T, args ...string) result {
	t.Helper()
	return p.run(t, p.home, append([]string{"podman"}, args...)...)
}

// TestPodmanNotRoot is a user who is not root and has no Docker, only
// rootless Podman: envd builds in a builder container in their Podman,
// runs the environment there, and the project stays theirs.
func TestPodmanNotRoot(t *testing.T) {
	requireE2E(t)
	u := newPodmanUser(t, 4323)
	srv := index(t, wheel{name: "alpha", version: "1.0"})
	name := "e2e-podman"
	webPort := freeTCPPort(t)
	dir := filepath.Join(u.home, name)
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "build.envd"), []byte(fmt.Sprintf(`def build():
    base(os="debian12", language="python3")
    config.pip_index(url=%q, trust=True)
    install.python_packages(name=["alpha"])
    runtime.expose(envd_port=%d, service="web")
    runtime.daemon(commands=[["python3", "-m", "http.server", "--bind", "127.0.0.1", "%d"]])
`, srv.URL(), webPort, webPort)), 0o644)
	os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("from the host\n"), 0o644)
	beta := addWheel(t, dir, wheel{name: "beta", version: "2.0"}) // installed at run time, without sudo
	exec.Command("chown", "-R", fmt.Sprintf("%d:%d", u.uid, u.gid), dir).Run()
	t.Cleanup(func() { u.run(t, dir, "envd", "destroy", name) })

	// No service yet: told how to start one, and no context is half-made.
	stopped := &dockerUser{name: u.name, home: u.home, uid: u.uid, gid: u.gid, bin: u.bin, env: []string{"XDG_RUNTIME_DIR=/run/user/" + strconv.Itoa(u.uid) + "/none"}}
	if r := stopped.run(t, dir, "envd", "--context", "nowhere", "build"); r.code != 1 {
		t.Errorf("envd with an unknown context: want exit 1, got %s", r)
	}
	r := stopped.run(t, dir, "envd", "context", "create", "pod-off", "--runtime", "podman")
	if r.code != 0 || !strings.Contains(r.stderr, "podman system service --time=0") {
		t.Errorf("context create with no Podman answering: want it made, with a warning saying how to start the service; got %s", r)
	}
	if r := stopped.run(t, dir, "envd", "--context", "pod-off", "build"); r.code != 1 || !strings.Contains(r.stderr, "podman system service --time=0") || strings.Contains(r.stderr, "goroutine") {
		t.Errorf("build with no Podman answering: want exit 1 and how to start it, got %s", r)
	}

	r = u.must(t, dir, "envd", "context", "create", "pod", "--runtime", "podman", "--use")
	if !strings.Contains(r.stdout, "(rootless) answers on "+u.socket) {
		t.Errorf("context create does not say which Podman answers:\n%s", r)
	}
	u.must(t, dir, "envd", "bootstrap", "--registry-mirror", mirror)
	builder := buildkitd.ContainerName(buildkitd.Options{Dir: filepath.Join(u.home, ".local/share/envd/buildkit-podman")})
	if r := u.must(t, dir, "envd", "bootstrap", "--status"); !strings.Contains(r.stdout, "in the container "+builder) || !strings.Contains(r.stdout, "ready true") {
		t.Errorf("bootstrap --status does not show a ready builder container %s:\n%s", builder, r.stdout)
	}
	if r := u.podman(t, "inspect", "-f", "{{.State.Running}}", builder); strings.TrimSpace(r.stdout) != "true" {
		t.Errorf("the builder container is not running in the user's Podman: %s", r)
	}

	u.must(t, dir, "envd", "up", "--detach", "--progress", "plain")
	if out, _ := dockerCmd(t, "ps", "-aq", "--filter", "name=envd-"+name); strings.TrimSpace(out) != "" {
		t.Errorf("the environment went into Docker, not Podman: %s", out)
	}
	if r := u.podman(t, "ps", "--filter", "name=^envd-"+name+"$", "--format", "{{.Names}}"); strings.TrimSpace(r.stdout) != "envd-"+name {
		t.Errorf("podman ps does not show envd-%s running: %s", name, r)
	}

	// Inside, the host user is the dev user (UID 1000, keep-id): the venv,
	// the home and the project are theirs, pip needs no sudo.
	script := fmt.Sprintf(`id -u; id -g; stat -c %%u:%%g %[1]s %[1]s/lib/python3.11/site-packages "$HOME" .
python -m pip install -q --no-index --no-deps ./%[2]s && python -c 'import alpha, beta; print(alpha.__version__, beta.__version__)'
echo from-env > from-env.txt`, compile.VenvDir, beta)
	r = u.must(t, dir, "envd", "exec", name, "--", "sh", "-c", script)
	if want := "1000\n1000\n1000:1000\n1000:1000\n1000:1000\n1000:1000\n1.0 2.0\n"; r.stdout != want {
		t.Errorf("in the environment got\n%s\nwant (uid, gid, owners of the venv, site-packages, home and project, then imports)\n%s\nstderr: %s", r.stdout, want, r.stderr)
	}
	if st, err := os.Stat(filepath.Join(dir, "from-env.txt")); err != nil {
		t.Errorf("file written in the environment: %v", err)
	} else if s := st.Sys().(*syscall.Stat_t); int(s.Uid) != u.uid || int(s.Gid) != u.gid {
		t.Errorf("file written in the environment belongs to %d:%d on the host, want %d:%d", s.Uid, s.Gid, u.uid, u.gid)
	}

	// The user's own OpenSSH, through the entry envd wrote.
	if r := u.run(t, dir, "ssh", "-o", "BatchMode=yes", name+".envd", "id", "-un"); r.code != 0 || strings.TrimSpace(r.stdout) != "envd" {
		t.Errorf("ssh %s.envd as %s: %s", name, u.name, r)
	}
	// The daemon answers on its exposed port here.
	web := fmt.Sprintf("http://127.0.0.1:%d/hello.txt", webPort)
	eventually(t, 30*time.Second, "daemon answers", func() error {
		code, body, err := httpGet(web)
		if err == nil && (code != 200 || body != "from the host\n") {
			err = fmt.Errorf("status %d body %q", code, body)
		}
		return err
	})
	// A second up finds it as it is: the ports envd chose stay.
	if r := u.must(t, dir, "envd", "up", "--detach"); !strings.Contains(r.stdout, "already running") {
		t.Errorf("a second up did not find the environment running:\n%s", r)
	}

	u.must(t, dir, "envd", "down", name)
	if r := u.podman(t, "ps", "-aq", "--filter", "name=^envd-"+name+"$"); strings.TrimSpace(r.stdout) != "" {
		t.Errorf("container left after down: %s", r.stdout)
	}
	if cfg, _ := os.ReadFile(filepath.Join(u.home, ".ssh", "config")); strings.Contains(string(cfg), name+".envd") {
		t.Errorf("ssh entry left after down:\n%s", cfg)
	}

	// GPUs come through CDI, and this machine has none: said before
	// anything is made.
	if r := u.run(t, dir, "envd", "up", "--detach", "--gpus", "all"); r.code != 1 || !strings.Contains(r.stderr, "nvidia-ctk cdi generate") || strings.Contains(r.stderr, "goroutine") {
		t.Errorf("up --gpus all on Podman without CDI: want exit 1 and how to make a CDI specification, got %s", r)
	}
	if r := u.podman(t, "ps", "-aq", "--filter", "name=^envd-"+name+"$"); strings.TrimSpace(r.stdout) != "" {
		t.Errorf("container left after a failed up: %s", r.stdout)
	}
	if cfg, _ := os.ReadFile(filepath.Join(u.home, ".ssh", "config")); strings.Contains(string(cfg), name+".envd") {
		t.Errorf("ssh entry left after a failed up:\n%s", cfg)
	}

	// Restarted (as after a reboot), the builder still has its cache.
	if r := u.podman(t, "restart", builder); r.code != 0 {
		t.Fatalf("podman restart %s: %s", builder, r)
	}
	if r := u.must(t, dir, "envd", "build", "--force"); !allCached(r.stdout + r.stderr) {
		t.Errorf("a rebuild after podman restart of the builder was not cached:\n%s", r)
	}
	if n := srv.Downloads(alphaWheel(t, srv)); n != 1 {
		t.Errorf("alpha was downloaded %d times, want once", n)
	}

	// Nothing envd or its containers did left a file of root's in the
	// user's home (Podman's own storage included).
	u.noRootFiles(t)
}

// freeTCPPort is a port nothing listens on at 127.0.0.1, now.
func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// rootfulPodman is a rootful Podman service of the test's own: its storage,
// run directory and socket in a temporary directory, so the host's
// /var/lib/containers is not touched. At cleanup it stops the service by
// PID and removes the iptables chains and rules netavark made for
// published ports (it leaves them when the last container goes).
func rootfulPodman(t *testing.T) (socket string) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("rootful Podman needs root")
	}
	if _, err := exec.LookPath("podman"); err != nil {
		t.Fatalf("podman is not installed (scripts/setup.sh installs it): %v", err)
	}
	before, _ := exec.Command("iptables-save").Output()
	if strings.Contains(string(before), "NETAVARK") {
		t.Fatal("netavark's iptables chains exist already: this test would not know which to remove")
	}
	dir, err := os.MkdirTemp("/tmp", "envd-pmr-")
	if err != nil {
		t.Fatal(err)
	}
	// Podman's default nofile (1048576) is above this machine's hard
	// limit, and raising it needs CAP_SYS_RESOURCE, which the bounding
	// set lacks; a user's containers.conf says the same.
	conf := filepath.Join(dir, "containers.conf")
	os.WriteFile(conf, []byte("[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n"), 0o644)
	global := []string{"--root", filepath.Join(dir, "storage"), "--runroot", filepath.Join(dir, "run")}
	socket = filepath.Join(dir, "podman.sock")
	svc := exec.Command("podman", append(global, "system", "service", "--time=0", "unix://"+socket)...)
	svc.Env = append(os.Environ(), "CONTAINERS_CONF="+conf)
	log, _ := os.Create(filepath.Join(dir, "service.log"))
	svc.Stdout, svc.Stderr = log, log
	if err := svc.Start(); err != nil {
		t.Fatalf("podman system service: %v", err)
	}
	exited := make(chan struct{})
	go func() { svc.Wait(); close(exited) }()
	t.Cleanup(func() {
		rm := exec.Command("podman", append(global, "rm", "-af")...)
		rm.Env = svc.Env
		rm.Run()
		svc.Process.Kill()
		<-exited
		for _, r := range [][]string{
			{"-D", "FORWARD", "-m", "comment", "--comment", "netavark firewall plugin rules", "-j", "NETAVARK_FORWARD"},
			{"-F", "NETAVARK_FORWARD"}, {"-X", "NETAVARK_FORWARD"},
			{"-t", "nat", "-D", "PREROUTING", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "NETAVARK-HOSTPORT-DNAT"},
			{"-t", "nat", "-D", "OUTPUT", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "NETAVARK-HOSTPORT-DNAT"},
			{"-t", "nat", "-D", "POSTROUTING", "-j", "NETAVARK-HOSTPORT-MASQ"},
			{"-t", "nat", "-F", "NETAVARK-HOSTPORT-DNAT"}, {"-t", "nat", "-X", "NETAVARK-HOSTPORT-DNAT"},
			{"-t", "nat", "-F", "NETAVARK-HOSTPORT-MASQ"}, {"-t", "nat", "-X", "NETAVARK-HOSTPORT-MASQ"},
			{"-t", "nat", "-F", "NETAVARK-HOSTPORT-SETMARK"}, {"-t", "nat", "-X", "NETAVARK-HOSTPORT-SETMARK"},
		} {
			exec.Command("iptables", r...).Run()
		}
		if after, _ := exec.Command("iptables-save").Output(); strings.Contains(string(after), "NETAVARK") {
			t.Errorf("netavark's iptables rules are left:\n%s", after)
		}
		if out, _ := exec.Command("ip", "link", "show", "podman0").CombinedOutput(); !strings.Contains(string(out), "does not exist") {
			exec.Command("ip", "link", "del", "podman0").Run()
		}
		if b, _ := os.ReadFile(log.Name()); t.Failed() {
			t.Logf("podman system service log:\n%s", lastLines(string(b), 30))
		}
		os.RemoveAll(dir)
	})
	waitForService(t, socket, exited, log.Name())
	return socket
}

// waitForService waits until a podman service answers on socket, failing
// with its log when it exits or takes more than 30 s.
func waitForService(t *testing.T, socket string, exited <-chan struct{}, log string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.Dial("unix", socket); err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			deadline = time.Time{}
		default:
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(log)
			t.Fatalf("podman system service did not answer on %s:\n%s", socket, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestPodmanRoot is root on rootful Podman: no user namespace, ports
// published on 127.0.0.1 by Podman's own bridge, and the environment runs
// as root, as on Docker.
func TestPodmanRoot(t *testing.T) {
	requireE2E(t)
	socket := rootfulPodman(t)
	dir := filepath.Join(t.TempDir(), "e2e-podman-root")
	os.Mkdir(dir, 0o755)
	name := "e2e-podman-root"
	os.WriteFile(filepath.Join(dir, "build.envd"), []byte(`def build():
    base(os="debian12", language="python3")
    runtime.expose(envd_port=8000, service="web")
    runtime.daemon(commands=[["python3", "-m", "http.server", "8000"]])
`), 0o644)
	os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("from the host\n"), 0o644)
	ctxName := "e2e-podman-root"
	r := mustEnvd(t, dir, "context", "create", ctxName, "--runtime", "podman", "--podman-socket", socket)
	if !strings.Contains(r.stdout, "(rootful) answers on "+socket) || !strings.Contains(r.stdout, "published on 127.0.0.1") {
		t.Errorf("context create does not say which Podman answers:\n%s", r)
	}
	t.Cleanup(func() {
		envd(t, dir, "--context", ctxName, "destroy", name)
		envd(t, dir, "--context", ctxName, "bootstrap", "--stop", "--rm")
		envd(t, dir, "context", "rm", ctxName)
	})
	mustEnvd(t, dir, "--context", ctxName, "bootstrap", "--registry-mirror", mirror)
	mustEnvd(t, dir, "--context", ctxName, "up", "--detach", "--name", name, "--progress", "plain")
	if out, _ := dockerCmd(t, "ps", "-aq", "--filter", "name=envd-"+name); strings.TrimSpace(out) != "" {
		t.Errorf("the environment went into Docker, not Podman: %s", out)
	}
	r = mustEnvd(t, dir, "--context", ctxName, "ls", "-o", "json")
	var listed []struct {
		Image     string `json:"image"`
		Endpoints []struct {
			ContainerPort int    `json:"container_port"`
			HostIP        string `json:"host_ip"`
			HostPort      int    `json:"host_port"`
		} `json:"endpoints"`
	}
	var web string
	if err := json.Unmarshal([]byte(r.stdout), &listed); err != nil || len(listed) != 1 {
		t.Fatalf("envd ls -o json: %v\n%s", err, r.stdout)
	}
	for _, p := range listed[0].Endpoints {
		if p.ContainerPort == 8000 && p.HostIP == "127.0.0.1" && p.HostPort != 0 {
			web = fmt.Sprintf("http://127.0.0.1:%d/hello.txt", p.HostPort)
		}
	}
	if web == "" || listed[0].Image != name+":dev" {
		t.Fatalf("envd ls does not show the image %s:dev and the daemon's port published on loopback:\n%s", name, r.stdout)
	}
	eventually(t, 30*time.Second, "daemon answers", func() error {
		code, body, err := httpGet(web)
		if err == nil && (code != 200 || body != "from the host\n") {
			err = fmt.Errorf("status %d body %q", code, body)
		}
		return err
	})
	r = mustEnvd(t, dir, "--context", ctxName, "exec", name, "--", "sh", "-c", "id -u; echo x > from-env.txt")
	if strings.TrimSpace(r.stdout) != "0" {
		t.Errorf("root's environment runs as %q, want 0 (root, as on Docker)", r.stdout)
	}
	if st, err := os.Stat(filepath.Join(dir, "from-env.txt")); err != nil || st.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Errorf("file written in the environment: %v", err)
	}
	mustEnvd(t, dir, "--context", ctxName, "down", name)
	if r := envd(t, dir, "--context", ctxName, "ls"); strings.Contains(r.stdout, name) {
		t.Errorf("envd ls shows %s after down:\n%s", name, r.stdout)
	}
	// The image is in Podman, and destroy removes it there.
	if r := mustEnvd(t, dir, "--context", ctxName, "images", "ls"); !strings.Contains(r.stdout, name) {
		t.Errorf("envd images ls in the podman context does not show %s:\n%s", name, r.stdout)
	}
	mustEnvd(t, dir, "--context", ctxName, "up", "--detach", "--name", name)
	mustEnvd(t, dir, "--context", ctxName, "destroy", name)
	if r := mustEnvd(t, dir, "--context", ctxName, "images", "ls"); strings.Contains(r.stdout, name) {
		t.Errorf("envd images ls shows %s after destroy:\n%s", name, r.stdout)
	}
}
