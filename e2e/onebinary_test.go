package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"envd.dev/envd/internal/buildkitd"
	"envd.dev/envd/internal/elfbin"
)

// TestOneBinary is a user who has envd as one file, from `go install` of
// the module's command (here from this copy of the module, as the README
// says to do with a version), and nothing else: no buildkitd, envd-agent,
// buildctl or envd-handover anywhere. envd is its own builder (buildkitd in
// the builder container), its own agent in the dev image, and on a server
// also its own buildctl and envd-handover in the builder container
// (internal/multicall).
func TestOneBinary(t *testing.T) {
	requireE2E(t)
	u := newDockerUser(t, 4324)
	for _, extra := range []string{"envd", "envd-agent", "buildkitd", "buildctl", "envd-handover"} {
		os.Remove(filepath.Join(u.bin, extra))
	}
	install := exec.Command("go", "install", "envd.dev/envd/cmd/envd")
	install.Dir = ".."
	install.Env = append(os.Environ(), "GOBIN="+u.bin, "CGO_ENABLED=0")
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go install envd.dev/envd/cmd/envd: %v\n%s", err, out)
	}
	envd := filepath.Join(u.bin, "envd")
	if r := u.must(t, u.home, "envd", "version"); !strings.Contains(r.stdout, "buildkit v") {
		t.Errorf("envd version of the installed envd: %s", r)
	}
	if info, err := elfbin.Read(envd); err != nil || !info.Static() {
		t.Fatalf("%s is not a static executable (make build links it statically): %+v, %v", envd, info, err)
	}
	st, err := os.Stat(envd)
	if err != nil {
		t.Fatal(err)
	}
	name := "e2e-onebinary"
	dir := filepath.Join(u.home, name)
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "build.envd"), []byte("def build():\n    base(os=\"debian12\", language=\"python3\")\n"), 0o644)
	exec.Command("chown", "-R", fmt.Sprintf("%d:%d", u.uid, u.gid), u.home).Run()
	builder := buildkitd.ContainerName(buildkitd.Options{Dir: filepath.Join(u.home, ".local/share/envd/buildkit")})
	t.Cleanup(func() {
		u.run(t, dir, "envd", "destroy", name)
		dockerCmd(t, "rm", "-f", builder)
		dockerCmd(t, "volume", "rm", builder)
	})

	version := strings.SplitN(u.must(t, dir, "envd", "version").stdout, "\n", 2)[0] // "envd VERSION"
	// The agent in the image is envd (the same file), answering as envd-agent.
	agentCheck := "/opt/envd/bin/envd-agent version && stat -c %s /opt/envd/bin/envd-agent && id -un"
	want := strings.TrimPrefix(version, "envd ") + "\n" + strconv.FormatInt(st.Size(), 10) + "\nenvd\n"

	u.must(t, dir, "envd", "up", "--detach", "--progress", "quiet", "--registry-mirror", mirror)
	// The builder container runs envd as BuildKit's daemon, of the
	// BuildKit envd is built with.
	bk := strings.TrimSpace(strings.TrimPrefix(strings.SplitN(u.must(t, dir, "envd", "version").stdout, "\n", 3)[1], "buildkit "))
	bk = strings.Fields(bk)[0]
	if r := u.must(t, dir, "envd", "bootstrap", "--status"); !strings.Contains(r.stdout, "buildkit: "+bk+" ("+version+")") {
		t.Errorf("envd bootstrap --status: want the builder to be %s (%s):\n%s", bk, version, r.stdout)
	}
	if r := u.run(t, dir, "ssh", "-o", "BatchMode=yes", name+".envd", agentCheck); r.code != 0 || r.stdout != want {
		t.Errorf("ssh %s.envd: got %s; want the agent to be envd:\n%s", name, r, want)
	}
	u.must(t, dir, "envd", "down", name)
	if out, _ := dockerCmd(t, "ps", "-aq", "--filter", "name=^envd-"+name+"$"); strings.TrimSpace(out) != "" {
		t.Errorf("container left after down: %s", out)
	}

	// On a server, the builder container's buildctl (dialled for every
	// build) and envd-handover (the image reaching the server's Docker) are
	// envd too.
	t.Run("server", func(t *testing.T) {
		srv := sshHost(t)
		u.reachServer(srv)
		exec.Command("chown", "-R", fmt.Sprintf("%d:%d", u.uid, u.gid), u.home).Run()
		t.Cleanup(func() { u.run(t, dir, "envd", "--context", "gpu", "destroy", name) })
		u.must(t, dir, "envd", "context", "create", "gpu", "--runtime", "ssh://envd-sshhost", "--use")
		r := u.must(t, dir, "envd", "up", "--detach", "--progress", "plain", "--registry-mirror", "http://"+srv.mirror)
		if strings.Count(r.stderr, envd) < 2 {
			t.Errorf("the server's builder image was not made with envd as buildctl and envd-handover:\n%s", r.stderr)
		}
		if r := u.run(t, dir, "ssh", "-o", "BatchMode=yes", name+".envd", agentCheck); r.code != 0 || r.stdout != want {
			t.Errorf("ssh %s.envd on the server: got %s; want\n%s", name, r, want)
		}
		u.must(t, dir, "envd", "destroy", name)
	})
	u.noRootFiles(t)
}
