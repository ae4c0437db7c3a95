package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"envd.dev/envd/internal/testing/pyindex"
)

// These run envd against a second "server" on this machine that
// scripts/ssh-host.sh starts: a network namespace with its own OpenSSH
// server and its own dockerd, in a mount namespace where this machine's
// /tmp (the projects) cannot be seen. envd reaches it only as a user
// would: with OpenSSH, through ~/.ssh/config.

const sshHostEnvFile = "/var/lib/envd-sshhost/env"

// sshServer is the test server, as scripts/ssh-host.sh describes it.
type sshServer struct {
	addr, gateway, user, key, knownHosts, nsenter string
	// mirror is the server's docker.io: a relay to the registry mirror here.
	mirror string
}

// sshHost reads the server's description, and makes it reachable as the
// alias envd-sshhost (and by its address) in the test user's ssh config.
func sshHost(t *testing.T) sshServer {
	t.Helper()
	requireE2E(t)
	f, err := os.Open(sshHostEnvFile)
	if err != nil {
		t.Skipf("needs the ssh test server: bash scripts/ssh-host.sh up (%v)", err)
	}
	defer f.Close()
	vars := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			vars[k] = strings.Trim(v, `"'`)
		}
	}
	s := sshServer{addr: vars["ENVD_SSHHOST_ADDR"], gateway: vars["ENVD_SSHHOST_GATEWAY"], user: vars["ENVD_SSHHOST_USER"],
		knownHosts: vars["ENVD_SSHHOST_KNOWN_HOSTS"], nsenter: vars["ENVD_SSHHOST_NSENTER"], mirror: vars["ENVD_SSHHOST_MIRROR"]}
	if s.addr == "" || s.gateway == "" || s.nsenter == "" || s.mirror == "" {
		t.Fatalf("%s lacks addresses: %v", sshHostEnvFile, vars)
	}
	// ssh wants the key to be the user's own and private.
	key, err := os.ReadFile(vars["ENVD_SSHHOST_KEY"])
	if err != nil {
		t.Fatal(err)
	}
	s.key = filepath.Join(homeDir, ".ssh", "envd-sshhost-key")
	os.MkdirAll(filepath.Dir(s.key), 0o700)
	if err := os.WriteFile(s.key, key, 0o600); err != nil {
		t.Fatal(err)
	}
	block := fmt.Sprintf("\n# the e2e ssh server\nHost envd-sshhost %s\n  HostName %s\n  User %s\n  IdentityFile %s\n  IdentitiesOnly yes\n  UserKnownHostsFile %s\n  StrictHostKeyChecking yes\n",
		s.addr, s.addr, s.user, s.key, s.knownHosts)
	sshConfig := filepath.Join(homeDir, ".ssh", "config")
	before, _ := os.ReadFile(sshConfig)
	if err := os.WriteFile(sshConfig, append(before, block...), 0o600); err != nil {
		t.Fatal(err)
	}
	// OpenSSH reads ~/.ssh of the passwd entry, not $HOME: envd is told
	// where the test's config is as a user would tell it.
	t.Setenv("ENVD_SSH_COMMAND", "ssh -F "+sshConfig)
	t.Cleanup(func() {
		now, _ := os.ReadFile(sshConfig)
		os.WriteFile(sshConfig, []byte(strings.Replace(string(now), block, "", 1)), 0o600)
		os.Remove(s.key)
	})
	return s
}

// reachServer gives u the server as the alias envd-sshhost in their own
// ~/.ssh (key, known_hosts, config); the caller chowns the home.
func (u *dockerUser) reachServer(srv sshServer) {
	sshDir := filepath.Join(u.home, ".ssh")
	os.MkdirAll(sshDir, 0o700)
	key, _ := os.ReadFile(srv.key)
	known, _ := os.ReadFile(srv.knownHosts)
	os.WriteFile(filepath.Join(sshDir, "id_server"), key, 0o600)
	os.WriteFile(filepath.Join(sshDir, "known_hosts"), known, 0o600)
	os.WriteFile(filepath.Join(sshDir, "config"), []byte(fmt.Sprintf("Host envd-sshhost\n  HostName %s\n  User %s\n  IdentityFile ~/.ssh/id_server\n  IdentitiesOnly yes\n  StrictHostKeyChecking yes\n", srv.addr, srv.user)), 0o600)
}

// onServer runs a command on the server as root, outside of envd.
func (s sshServer) onServer(t *testing.T, args ...string) (string, error) {
	t.Helper()
	argv := append(strings.Fields(s.nsenter), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST=") // the server's own socket
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestSSHRuntimeNotRoot is a user who is not root on this machine (and
// not root on the server either) with their own ~/.ssh/config, as OpenSSH
// reads it: no ENVD_SSH_COMMAND. It runs before TestSSHRuntime, whose
// builder on the server it leaves for it.
func TestSSHRuntimeNotRoot(t *testing.T) {
	srv := sshHost(t)
	u := newDockerUser(t, 4322)
	u.reachServer(srv)
	name := "e2e-ssh-nr"
	dir := filepath.Join(u.home, name)
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "build.envd"), []byte("def build():\n    base(os=\"debian12\", language=\"python3\")\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("from a user\n"), 0o644)
	exec.Command("chown", "-R", fmt.Sprintf("%d:%d", u.uid, u.gid), u.home).Run()
	t.Cleanup(func() { u.run(t, dir, "envd", "--context", "gpu", "destroy", name) })

	u.must(t, dir, "envd", "context", "create", "gpu", "--runtime", "ssh://envd-sshhost", "--use")
	u.must(t, dir, "envd", "up", "--detach", "--progress", "quiet", "--registry-mirror", "http://"+srv.mirror)
	if r := u.run(t, dir, "ssh", "-o", "BatchMode=yes", name+".envd", "cat hello.txt && id -un && touch made-here"); r.code != 0 || r.stdout != "from a user\nenvd\n" {
		t.Errorf("ssh %s.envd as %s: %s", name, u.name, r)
	}
	u.must(t, dir, "envd", "sync", name, "--from-env")
	if st, err := os.Stat(filepath.Join(dir, "made-here")); err != nil || int(st.Sys().(*syscall.Stat_t).Uid) != u.uid {
		t.Errorf("a file made on the server, synced back: %v, %+v; want it to be %s's", err, st, u.name)
	}
	// envd build plans the image envd up runs: up after it builds nothing.
	u.must(t, dir, "envd", "down", name)
	if r := u.must(t, dir, "envd", "build", "--force", "--progress", "plain"); !strings.Contains(r.stdout+r.stderr, "built") {
		t.Errorf("envd build on the server: %s", r)
	}
	if r := u.must(t, dir, "envd", "up", "--detach", "--progress", "plain"); !strings.Contains(r.stderr, "up to date") {
		t.Errorf("up after envd build rebuilt the image (envd build planned another one):\n%s", r)
	}
	u.must(t, dir, "envd", "destroy", name)
	u.noRootFiles(t)
}

func TestSSHRuntime(t *testing.T) {
	srv := sshHost(t)
	mirrorOnServer := "http://" + srv.mirror
	idx := startIndex(t, true, []pyindex.Option{pyindex.WithAddr(net.JoinHostPort(srv.gateway, "0"))}, wheel{name: "e2e-sshpkg", version: "1.0"})
	name := "e2e-ssh"
	dir := project(t, name, map[string]string{
		"build.envd": fmt.Sprintf(`def build():
    base(os="debian12", language="python3")
    config.pip_index(url="%s")
    install.python_packages(name=["e2e-sshpkg"])
    runtime.expose(envd_port=8000, service="web")
    runtime.daemon(commands=[["python3", "-m", "http.server", "8000"]])
`, idx.URL()),
		"hello.txt":       "from the laptop\n",
		".envdignore":     "scratch/\n",
		"scratch/big.bin": "not for the server\n",
	})
	serverBefore := srv.things(t)
	ctxName := "e2e-ssh"
	mustEnvd(t, dir, "context", "create", ctxName, "--runtime", "ssh://envd-sshhost")
	t.Cleanup(func() { envd(t, dir, "context", "rm", ctxName) })
	senvd := func(args ...string) result { return envd(t, dir, append([]string{"--context", ctxName}, args...)...) }
	mustSenvd := func(args ...string) result {
		t.Helper()
		r := senvd(args...)
		if r.code != 0 {
			t.Fatalf("envd --context %s %s: %s", ctxName, strings.Join(args, " "), r)
		}
		return r
	}
	t.Cleanup(func() {
		senvd("destroy", name)
		senvd("bootstrap", "--stop", "--rm")
	})
	if ls := mustEnvd(t, dir, "context", "ls"); !strings.Contains(ls.stdout, "docker on ssh://envd-sshhost") {
		t.Errorf("context ls does not show the server:\n%s", ls.stdout)
	}

	up := mustSenvd("up", "--detach", "--progress", "quiet", "--registry-mirror", mirrorOnServer)
	web := forwardedPort(t, up.stdout, 8000)

	// Built and run on the server: its Docker has the image and the
	// container, this machine's has neither.
	if out, err := srv.onServer(t, "docker", "ps", "--filter", "name=envd-"+name, "--format", "{{.Names}} {{.Status}}"); err != nil || !strings.Contains(out, "envd-"+name+" Up") {
		t.Errorf("the server's docker ps: %v\n%s", err, out)
	}
	if out, err := srv.onServer(t, "docker", "image", "inspect", "--format", "{{.Id}}", name+":dev"); err != nil {
		t.Errorf("the server has no image %s:dev: %v\n%s", name, err, out)
	}
	if out, err := dockerCmd(t, "image", "inspect", name+":dev"); err == nil {
		t.Errorf("this machine's Docker has the image: it crossed the network\n%s", out)
	}
	if out, err := dockerCmd(t, "ps", "-a", "--filter", "name=envd-"+name, "--format", "{{.Names}}"); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("this machine's Docker runs %q", out)
	}

	// OpenSSH through the managed entry: one hop, via envd's ProxyCommand.
	sshConfig := filepath.Join(homeDir, ".ssh", "config")
	openssh := func(cmd string) (string, error) {
		out, err := exec.Command("ssh", "-F", sshConfig, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", name+".envd", cmd).CombinedOutput()
		return string(out), err
	}
	out, err := openssh("cat hello.txt && id -un && pwd && python -c 'import e2e_sshpkg; print(\"imported\")' && echo made-on-server > made.txt && ls scratch 2>&1; true")
	if want := "from the laptop\nenvd\n/home/envd/" + name + "\nimported\n"; err != nil || !strings.HasPrefix(out, want) || !strings.Contains(out, "No such file") {
		t.Errorf("ssh %s.envd: %v\n%s\nwant it to start with %q and find no scratch/ (ignored)", name, err, out, want)
	}

	// sync both ways.
	mustSenvd("sync", name, "--from-env")
	if b, err := os.ReadFile(filepath.Join(dir, "made.txt")); err != nil || string(b) != "made-on-server\n" {
		t.Errorf("sync --from-env: made.txt = %q, %v", b, err)
	}
	os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("changed on the laptop\n"), 0o644)
	mustSenvd("sync", name, "--to-env")

	// The daemon, through the port forwarded to this machine.
	eventually(t, 60*time.Second, "daemon answers through its forwarded port", func() error {
		code, body, err := httpGet("http://" + web + "/hello.txt")
		if err == nil && (code != 200 || body != "changed on the laptop\n") {
			err = fmt.Errorf("status %d body %q", code, body)
		}
		return err
	})

	// exec, logs, ls: the same commands as on this machine's Docker.
	if r := senvd("exec", name, "--", "sh", "-c", "exit 3"); r.code != 3 {
		t.Errorf("envd exec exit code %d, want 3\n%s", r.code, r)
	}
	if r := mustSenvd("logs", name, "web"); !strings.Contains(r.stdout, "GET /hello.txt") {
		t.Errorf("envd logs web lacks the request:\n%s", r.stdout)
	}
	if r := mustSenvd("ls"); !strings.Contains(r.stdout, name) || !strings.Contains(r.stdout, web) {
		t.Errorf("envd ls does not show %s with its forwarded port %s:\n%s", name, web, r.stdout)
	}

	// The same file again: nothing to build.
	if m := build(t, dir, "--context", ctxName); !m.Skipped {
		t.Errorf("a second build of the same file was not skipped: %+v", m)
	}

	// down: the container and the ssh entry go; the work stays in the
	// server's volume, and the next up does not copy over it.
	mustSenvd("down", name)
	if out, _ := srv.onServer(t, "docker", "ps", "-a", "--filter", "name=envd-"+name, "--format", "{{.Names}}"); strings.TrimSpace(out) != "" {
		t.Errorf("after down the server still has %q", out)
	}
	if _, err := net.DialTimeout("tcp", web, time.Second); err == nil {
		t.Errorf("after down %s still accepts connections", web)
	}
	if cfg, _ := os.ReadFile(sshConfig); strings.Contains(string(cfg), name+".envd") {
		t.Errorf("after down the ssh entry is still there:\n%s", cfg)
	}
	mustSenvd("up", "--detach", "--progress", "quiet")
	if out, err := openssh("cat made.txt hello.txt"); err != nil || out != "made-on-server\nchanged on the laptop\n" {
		t.Errorf("after down and up: %q, %v", out, err)
	}

	// destroy: on the server only the builder and its cache are left.
	mustSenvd("destroy", name)
	for _, thing := range srv.things(t) {
		if !slices.Contains(serverBefore, thing) && !strings.HasPrefix(thing, "envd-buildkitd-") && !strings.HasPrefix(thing, "envd/buildkit:") {
			t.Errorf("after destroy the server still has %s", thing)
		}
	}
}

// things lists the server's containers, volumes and images (by ID, so
// that an untagged one counts too).
func (s sshServer) things(t *testing.T) []string {
	t.Helper()
	out, err := s.onServer(t, "sh", "-c", "docker ps -a --format '{{.Names}}'; docker volume ls --format '{{.Name}}'; docker images --format '{{.Repository}}:{{.Tag}}@{{.ID}}'")
	if err != nil {
		t.Fatalf("listing what the server has: %v\n%s", err, out)
	}
	return strings.Fields(out)
}

// Each way of not reaching the server says so, exits 1, and leaves
// nothing on it.
func TestSSHRuntimeFailures(t *testing.T) {
	srv := sshHost(t)
	dir := project(t, "e2e-ssh-fail", map[string]string{"build.envd": "def build():\n    base(os=\"debian12\", language=\"python3\")\n"})
	before, err := srv.onServer(t, "sh", "-c", "docker ps -a -q; docker volume ls -q")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, runtime, want string }{
		{"unreachable", "ssh://" + srv.user + "@" + srv.addr + ":2", "server not reachable"},
		{"refused key", "ssh://envd-nobody@" + srv.addr, "server refused the login"},
		{"no Docker for this user", "ssh://" + srv.userWithoutDocker(t) + "@" + srv.addr, "may not use its Docker"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctxName := "e2e-ssh-" + strings.ToLower(strings.ReplaceAll(tc.name, " ", "-"))
			mustEnvd(t, dir, "context", "create", ctxName, "--runtime", tc.runtime)
			t.Cleanup(func() { envd(t, dir, "context", "rm", ctxName) })
			r := envd(t, dir, "--context", ctxName, "up", "--detach")
			if r.code != 1 || !strings.Contains(r.stderr, tc.want) || !strings.Contains(r.stderr, "hint:") || strings.Contains(r.stderr, "goroutine") {
				t.Errorf("want exit 1 with %q and a hint: %s", tc.want, r)
			}
			if cfg, _ := os.ReadFile(filepath.Join(homeDir, ".ssh", "config")); strings.Contains(string(cfg), "e2e-ssh-fail.envd") {
				t.Errorf("an ssh entry was left:\n%s", cfg)
			}
		})
	}
	if after, _ := srv.onServer(t, "sh", "-c", "docker ps -a -q; docker volume ls -q"); after != before {
		t.Errorf("the failures left containers or volumes on the server:\nbefore %q\nafter %q", before, after)
	}
}

// userWithoutDocker adds a user to the server who may log in with the
// test's key but is not in the docker group there: a server whose Docker
// this user cannot use.
func (s sshServer) userWithoutDocker(t *testing.T) string {
	t.Helper()
	const name, uid = "envd-nodocker", 3457
	home := "/var/lib/envd-sshhost/home/" + name    // visible on the server, as the script's own user's home is
	exec.Command("userdel", "--remove", name).Run() // left over from a killed run
	if out, err := exec.Command("useradd", "--uid", strconv.Itoa(uid), "--user-group", "--home-dir", home, "--create-home", "--shell", "/bin/bash", name).CombinedOutput(); err != nil {
		t.Fatalf("useradd %s: %v\n%s", name, err, out)
	}
	t.Cleanup(func() { exec.Command("userdel", "--remove", name).Run() })
	// sshd without PAM refuses a locked account.
	if out, err := exec.Command("usermod", "-p", "*", name).CombinedOutput(); err != nil {
		t.Fatalf("usermod: %v\n%s", err, out)
	}
	pub, err := exec.Command("ssh-keygen", "-y", "-f", s.key).Output()
	if err != nil {
		t.Fatal(err)
	}
	sshDir := filepath.Join(home, ".ssh")
	os.MkdirAll(sshDir, 0o700)
	if err := os.WriteFile(filepath.Join(sshDir, "authorized_keys"), pub, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("chown", "-R", name+":"+name, sshDir).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v\n%s", err, out)
	}
	return name
}
