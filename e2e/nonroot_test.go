package e2e

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"envd.dev/envd/internal/buildkitd"
	"envd.dev/envd/internal/compile"
	"envd.dev/envd/internal/testing/pyindex"
)

// dockerUser is a real account in the docker group with no sudo, as most
// users of a shared GPU server are; its UID is not 1000 and its primary
// group is the shared "users" (GID 100), not a group of its own.
type dockerUser struct {
	name, home string
	uid, gid   int
	bin        string   // a directory it can read, holding envd and envd-agent (and an ENVD_BUILDKITD)
	env        []string // more of its environment (XDG_RUNTIME_DIR)
}

func newDockerUser(t *testing.T, uid int) *dockerUser {
	t.Helper()
	return newLocalUser(t, uid, "--groups", "docker")
}

// newLocalUser is a real account with the useradd options given.
func newLocalUser(t *testing.T, uid int, options ...string) *dockerUser {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root to add a local user")
	}
	name := fmt.Sprintf("envd-nr-%d", uid)
	exec.Command("userdel", "-r", name).Run() // left over from a killed run
	args := append([]string{"--uid", strconv.Itoa(uid), "--gid", "users"}, options...)
	if out, err := exec.Command("useradd", append(args, "--create-home", "--shell", "/bin/bash", name)...).CombinedOutput(); err != nil {
		t.Fatalf("useradd %s: %v\n%s", name, err, out)
	}
	u := &dockerUser{name: name, home: "/home/" + name, uid: uid, gid: 100}
	t.Cleanup(func() {
		if out, err := exec.Command("userdel", "-r", name).CombinedOutput(); err != nil {
			t.Errorf("userdel %s: %v\n%s", name, err, out)
		}
	})
	bin, err := os.MkdirTemp("/tmp", "envd-nr-bin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(bin) })
	os.Chmod(bin, 0o755)
	files := map[string]string{envdBin: "envd", filepath.Join(filepath.Dir(envdBin), "envd-agent"): "envd-agent"}
	// A buildkitd other than envd itself, with what the builder image
	// takes from beside it.
	if bk := os.Getenv("ENVD_BUILDKITD"); bk != "" {
		files[bk] = "buildkitd"
		for _, extra := range []string{"buildctl", "envd-handover"} {
			if src := filepath.Join(filepath.Dir(bk), extra); fileExists(src) {
				files[src] = extra
			}
		}
	}
	for src, dst := range files {
		if err := copyFile(src, filepath.Join(bin, dst)); err != nil {
			t.Fatal(err)
		}
	}
	u.bin = bin
	return u
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// run runs argv as the user, with its groups (docker), in dir, with the
// environment a login would give it.
func (u *dockerUser) run(t *testing.T, dir string, argv ...string) result {
	t.Helper()
	return u.runGroups(t, "--init-groups", dir, argv...)
}

// runGroups is run with setpriv's groups option: --init-groups, or
// --clear-groups for the user before they joined the docker group.
func (u *dockerUser) runGroups(t *testing.T, groups, dir string, argv ...string) result {
	t.Helper()
	args := append([]string{"--reuid=" + strconv.Itoa(u.uid), "--regid=" + strconv.Itoa(u.gid), groups, "--"}, argv...)
	cmd := exec.Command("setpriv", args...)
	cmd.Env = append([]string{"PATH=" + u.bin + ":/usr/local/bin:/usr/bin:/bin", "HOME=" + u.home, "USER=" + u.name, "LANG=C"}, u.env...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run as %s: %v", u.name, err)
	}
	return r
}

// noRootFiles checks that nothing in the user's home belongs to root:
// what envd and its containers wrote there is the user's.
func (u *dockerUser) noRootFiles(t *testing.T) {
	t.Helper()
	filepath.WalkDir(u.home, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if fi, err := d.Info(); err == nil && fi.Sys().(*syscall.Stat_t).Uid == 0 {
			t.Errorf("%s belongs to root, in the home of %s", p, u.name)
		}
		return nil
	})
}

func (u *dockerUser) must(t *testing.T, dir string, argv ...string) result {
	t.Helper()
	r := u.run(t, dir, argv...)
	if r.code != 0 {
		t.Fatalf("as %s: %s: %s", u.name, strings.Join(argv, " "), r)
	}
	return r
}

// TestNotRoot is a user in the docker group, not root, on a machine where
// envd has never run for them: the builder runs as a container envd makes
// from its own buildkitd, and the environment's files are the user's.
func TestNotRoot(t *testing.T) {
	requireE2E(t)
	u := newDockerUser(t, 4321)
	srv := index(t, wheel{name: "alpha", version: "1.0"})
	name := "e2e-nonroot"
	dir := filepath.Join(u.home, name)
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "build.envd"), []byte(fmt.Sprintf(`def build():
    base(os="debian12", language="python3")
    config.pip_index(url=%q, trust=True)
    install.python_packages(name=["alpha"])
`, srv.URL())), 0o644)
	beta := addWheel(t, dir, wheel{name: "beta", version: "2.0"}) // installed at run time, without sudo
	exec.Command("chown", "-R", fmt.Sprintf("%d:%d", u.uid, u.gid), dir).Run()

	builder := buildkitd.ContainerName(buildkitd.Options{Dir: filepath.Join(u.home, ".local/share/envd/buildkit")})
	t.Cleanup(func() {
		u.run(t, dir, "envd", "destroy", name)
		dockerCmd(t, "rm", "-f", builder)
		dockerCmd(t, "volume", "rm", builder)
		dockerCmd(t, "rmi", name+":dev")
	})

	// Not yet in the docker group: told what to do, and nothing is left.
	if r := u.runGroups(t, "--clear-groups", dir, "envd", "build"); r.code != 1 || !strings.Contains(r.stderr, "join the docker group") || strings.Contains(r.stderr, "goroutine") {
		t.Errorf("envd build without access to Docker: want exit 1 and a hint to join the docker group, got %s", r)
	}
	if out, _ := dockerCmd(t, "ps", "-aq", "--filter", "name="+builder); strings.TrimSpace(out) != "" {
		t.Errorf("a builder container was made without access to Docker: %s", out)
	}

	u.must(t, dir, "envd", "bootstrap", "--registry-mirror", mirror)
	if r := u.must(t, dir, "envd", "bootstrap", "--status"); !strings.Contains(r.stdout, "in the container "+builder) || !strings.Contains(r.stdout, "ready true") {
		t.Errorf("bootstrap --status does not show a ready builder container %s:\n%s", builder, r.stdout)
	}
	if out, err := dockerCmd(t, "inspect", "-f", "{{.State.Running}} {{.HostConfig.NetworkMode}}", builder); err != nil || strings.TrimSpace(out) != "true host" {
		t.Errorf("builder container: %q %v", out, err)
	}

	u.must(t, dir, "envd", "up", "--detach", "--progress", "plain")
	script := fmt.Sprintf(`id -u; id -g; stat -c %%u:%%g %[1]s %[1]s/lib/python3.11/site-packages "$HOME" .
python -m pip install -q --no-index --no-deps ./%[2]s && python -c 'import alpha, beta; print(alpha.__version__, beta.__version__)'
echo from-env > from-env.txt`, compile.VenvDir, beta)
	r := u.must(t, dir, "envd", "exec", name, "--", "sh", "-c", script)
	ids := fmt.Sprintf("%d:%d", u.uid, u.gid)
	want := fmt.Sprintf("%d\n%d\n%s\n%s\n%s\n%s\n1.0 2.0\n", u.uid, u.gid, ids, ids, ids, ids)
	if r.stdout != want {
		t.Errorf("in the environment got\n%s\nwant (uid, gid, owners of the venv, site-packages, home and project, then imports)\n%s\nstderr: %s", r.stdout, want, r.stderr)
	}
	if st, err := os.Stat(filepath.Join(dir, "from-env.txt")); err != nil {
		t.Errorf("file written in the environment: %v", err)
	} else if s := st.Sys().(*syscall.Stat_t); int(s.Uid) != u.uid || int(s.Gid) != u.gid {
		t.Errorf("file written in the environment belongs to %d:%d, want %s", s.Uid, s.Gid, ids)
	}

	// The user's own OpenSSH, through the entry envd wrote in their ~/.ssh/config.
	if r := u.run(t, dir, "ssh", "-o", "BatchMode=yes", name+".envd", "id", "-u"); r.code != 0 || strings.TrimSpace(r.stdout) != strconv.Itoa(u.uid) {
		t.Errorf("ssh %s.envd as %s: %s", name, u.name, r)
	}

	u.must(t, dir, "envd", "down", name)
	if out, _ := dockerCmd(t, "ps", "-aq", "--filter", "name=^envd-"+name+"$"); strings.TrimSpace(out) != "" {
		t.Errorf("container left after down: %s", out)
	}
	if cfg, _ := os.ReadFile(filepath.Join(u.home, ".ssh", "config")); strings.Contains(string(cfg), name+".envd") {
		t.Errorf("ssh entry left after down:\n%s", cfg)
	}

	// Restarted by Docker (as after a reboot), the builder comes back by
	// itself and still has its cache.
	if out, err := dockerCmd(t, "restart", builder); err != nil {
		t.Fatalf("docker restart %s: %v\n%s", builder, err, out)
	}
	if r := u.must(t, dir, "envd", "build", "--force"); !allCached(r.stdout + r.stderr) {
		t.Errorf("a rebuild after docker restart of the builder was not cached:\n%s", r)
	}

	// Nothing envd or its containers did left a root-owned file in the
	// user's home (the bind-mounted project included).
	u.noRootFiles(t)

	// The builder's cache outlives its container: recreated, it still has it.
	dockerCmd(t, "rm", "-f", builder)
	if r := u.must(t, dir, "envd", "build", "--progress", "plain", "--force"); !strings.Contains(r.stdout+r.stderr, "starting the builder container") {
		t.Errorf("a removed builder container was not started again:\n%s", r)
	} else if srv.Downloads(alphaWheel(t, srv)) > 1 {
		t.Errorf("the recreated builder downloaded alpha again (%d downloads): its cache volume was lost", srv.Downloads(alphaWheel(t, srv)))
	}
}

// alphaWheel is the file name of the index's alpha wheel.
func alphaWheel(t *testing.T, srv *pyindex.Server) string {
	for f := range srv.DownloadCounts() {
		if strings.HasPrefix(f, "alpha-") && strings.HasSuffix(f, ".whl") {
			return f
		}
	}
	t.Fatal("the index served no alpha wheel")
	return ""
}
