package e2e

// An environment's life through faults (issue 13): nothing lost when it
// stops, is killed, or Docker restarts; nothing replaced without a word;
// two envds on one name at once; Ctrl-C; nothing left on disk after down.

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const lcBuild = "def build():\n    base(os=\"debian12\", language=\"python3\")\n"

// envStateDir is envs/NAME under the envd's XDG data dir, and its lock file.
func envStateDir(name string) (dir, lock string) {
	envs := filepath.Join(stateDir, "data", "envd", "envs")
	return filepath.Join(envs, name), filepath.Join(envs, "."+name+".lock")
}

func containerID(t *testing.T, name string) string {
	t.Helper()
	out, err := dockerCmd(t, "inspect", "-f", "{{.Id}}", "envd-"+name)
	if err != nil {
		t.Fatalf("docker inspect envd-%s: %v %s", name, err, out)
	}
	return strings.TrimSpace(out)
}

func containerState(t *testing.T, name string) string {
	t.Helper()
	out, _ := dockerCmd(t, "inspect", "-f", "{{.State.Status}}", "envd-"+name)
	return strings.TrimSpace(out)
}

// writePrecious leaves a file in the environment's home, outside the
// project: in the container's own layer.
func writePrecious(t *testing.T, dir, name string) {
	t.Helper()
	mustEnvd(t, dir, "exec", name, "--", "sh", "-c", "echo precious > ~/p.txt")
}

// sshCat reads a file over ssh the way the user's ssh would (managed entry,
// pinned host key).
func sshCat(t *testing.T, name, path string) (string, error) {
	t.Helper()
	c, err := dialEnv(t, name)
	if err != nil {
		return "", fmt.Errorf("ssh %s.envd: %w", name, err)
	}
	defer c.Close()
	out, err := sshRun(t, c, "cat "+path)
	return strings.TrimSpace(out), err
}

func checkPrecious(t *testing.T, name, when string) {
	t.Helper()
	if out, err := sshCat(t, name, "~/p.txt"); err != nil || out != "precious" {
		t.Errorf("%s: ~/p.txt is %q (%v), want precious", when, out, err)
	}
}

func checkForgotten(t *testing.T, name string) {
	t.Helper()
	dir, lock := envStateDir(name)
	for _, p := range []string{dir, lock} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s is left on disk", p)
		}
	}
	if data, _ := os.ReadFile(filepath.Join(homeDir, ".ssh", "config")); strings.Contains(string(data), name+".envd") {
		t.Errorf("an ssh entry for %s is left:\n%s", name, data)
	}
	if out, err := dockerCmd(t, "inspect", "envd-"+name); err == nil {
		t.Errorf("a container is left:\n%.300s", out)
	}
}

// TestLifecycleStoppedAndKilled: a stopped environment, and one whose agent
// was killed, come back as they were with envd up: same container, files
// intact; down then leaves nothing on disk.
func TestLifecycleStoppedAndKilled(t *testing.T) {
	requireE2E(t)
	name := "lc-keep"
	dir := project(t, name, map[string]string{"build.envd": lcBuild})
	t.Cleanup(func() { envd(t, dir, "destroy"); dockerCmd(t, "rmi", "-f", name+":dev") })
	mustEnvd(t, dir, "up", "--detach", "--progress", "quiet")
	id := containerID(t, name)
	if out, _ := dockerCmd(t, "inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}", "envd-"+name); strings.TrimSpace(out) != "unless-stopped" {
		t.Errorf("restart policy %q, want unless-stopped (back by itself after a Docker restart)", strings.TrimSpace(out))
	}
	writePrecious(t, dir, name)

	// Stopped (as after a reboot without a restart policy, or docker stop).
	if out, err := dockerCmd(t, "stop", "envd-"+name); err != nil {
		t.Fatalf("docker stop: %v %s", err, out)
	}
	r := mustEnvd(t, dir, "up", "--detach", "--progress", "quiet")
	if got := containerID(t, name); got != id {
		t.Errorf("up after docker stop made a new container (%.12s, was %.12s): the old one's files are gone\n%s", got, id, r)
	}
	checkPrecious(t, name, "after docker stop and envd up")

	// The agent (PID 1) killed.
	if out, err := dockerCmd(t, "kill", "--signal", "KILL", "envd-"+name); err != nil {
		t.Fatalf("docker kill: %v %s", err, out)
	}
	eventually(t, 30*time.Second, "the killed container stops", func() error {
		if st := containerState(t, name); st != "exited" && st != "running" {
			return fmt.Errorf("state %s", st)
		}
		return nil
	})
	mustEnvd(t, dir, "up", "--detach", "--progress", "quiet")
	if got := containerID(t, name); got != id {
		t.Errorf("up after the agent was killed made a new container")
	}
	checkPrecious(t, name, "after the agent was killed and envd up")

	// envd up with a shell (script(1) gives it a terminal): the shell's exit
	// status passes through and leaves the environment as it is.
	dockerCmd(t, "stop", "envd-"+name)
	sh := exec.Command("script", "-qec", envdBin+" up --progress quiet", "/dev/null")
	sh.Dir = dir
	sh.Stdin = strings.NewReader("exit 3\n")
	out, _ := sh.CombinedOutput()
	if code := sh.ProcessState.ExitCode(); code != 3 {
		t.Errorf("envd up, shell exits 3: envd exits %d\n%s", code, out)
	}
	if st := containerState(t, name); st != "running" || containerID(t, name) != id {
		t.Errorf("after the shell exited 3 the environment is %q (same container: %v)", st, containerID(t, name) == id)
	}
	checkPrecious(t, name, "after the shell exited 3")

	// Its ssh port taken while it was stopped: up fails, saying so, and
	// leaves the container; once the port is free, up resumes it.
	dockerCmd(t, "stop", "envd-"+name)
	port, _ := dockerCmd(t, "inspect", "-f", `{{(index (index .HostConfig.PortBindings "2222/tcp") 0).HostPort}}`, "envd-"+name)
	l, err := net.Listen("tcp", "127.0.0.1:"+strings.TrimSpace(port))
	if err != nil {
		t.Fatalf("taking the ssh port %q: %v", port, err)
	}
	r = envd(t, dir, "up", "--detach", "--progress", "quiet")
	l.Close()
	if r.code != 1 || !strings.Contains(r.stderr, "127.0.0.1:"+strings.TrimSpace(port)+" is already in use") {
		t.Errorf("up with the ssh port taken: want exit 1 naming the port\n%s", r)
	}
	if containerID(t, name) != id {
		t.Fatal("up with the ssh port taken removed the container")
	}
	mustEnvd(t, dir, "up", "--detach", "--progress", "quiet")
	checkPrecious(t, name, "after the ssh port was free again")

	mustEnvd(t, dir, "down")
	checkForgotten(t, name)
}

// TestLifecycleRebuildNeedsForce: after a rebuild, a stopped environment
// that holds changes is not replaced without --force, and the refusal names
// what would be lost; --force replaces it and says what was lost.
func TestLifecycleRebuildNeedsForce(t *testing.T) {
	requireE2E(t)
	name := "lc-rebuild"
	dir := project(t, name, map[string]string{"build.envd": lcBuild})
	t.Cleanup(func() { envd(t, dir, "destroy") })
	mustEnvd(t, dir, "up", "--detach", "--progress", "quiet")
	id := containerID(t, name)
	writePrecious(t, dir, name)
	dockerCmd(t, "stop", "envd-"+name)

	if err := os.WriteFile(filepath.Join(dir, "build.envd"), []byte(lcBuild+"    run(commands=[\"echo v2 > /etc/lc-v2\"])\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := envd(t, dir, "up", "--detach", "--progress", "quiet")
	if r.code != 1 {
		t.Errorf("up of a rebuilt image over a container with changes: want exit 1\n%s", r)
	}
	for _, want := range []string{"p.txt", "1 changed file", "would be lost", "--force"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("refusal lacks %q:\n%s", want, r.stderr)
		}
	}
	if got := containerID(t, name); got != id {
		t.Fatalf("the container was replaced without --force")
	}
	if out, _ := dockerCmd(t, "diff", "envd-"+name); !strings.Contains(out, "p.txt") {
		t.Errorf("the refused container lost its file:\n%s", out)
	}
	if st := containerState(t, name); st != "exited" {
		t.Errorf("the refused container is %s, want it left exited", st)
	}

	r = mustEnvd(t, dir, "up", "--detach", "--progress", "quiet", "--force")
	if !strings.Contains(r.stderr, "lost 1 changed file") || !strings.Contains(r.stderr, "p.txt") {
		t.Errorf("--force does not say what it lost:\n%s", r.stderr)
	}
	if containerID(t, name) == id {
		t.Error("--force kept the old container")
	}
	if out, err := sshCat(t, name, "/etc/lc-v2"); err != nil || out != "v2" {
		t.Errorf("after --force the environment does not run the rebuilt image: %q %v", out, err)
	}
}

// startEnvd starts the envd binary without waiting for it.
type running struct {
	cmd      *exec.Cmd
	out, err bytes.Buffer
}

func startInBackground(t *testing.T, dir string, args ...string) *running {
	t.Helper()
	r := &running{cmd: exec.Command(envdBin, args...)}
	r.cmd.Dir = dir
	r.cmd.Stdout, r.cmd.Stderr = &r.out, &r.err
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *running) wait() result {
	err := r.cmd.Wait()
	res := result{stdout: r.out.String(), stderr: r.err.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		res.code = ee.ExitCode()
	}
	return res
}

// TestLifecycleConcurrentUp: two envd up of one name at once, first of a
// new environment and then of a stopped one: both succeed, neither tells
// the user to down the other, and ssh works after.
func TestLifecycleConcurrentUp(t *testing.T) {
	requireE2E(t)
	name := "lc-race"
	dir := project(t, name, map[string]string{"build.envd": lcBuild})
	t.Cleanup(func() { envd(t, dir, "destroy") })
	build(t, dir) // both ups then race on the start itself

	both := func(round string) {
		t.Helper()
		a := startInBackground(t, dir, "up", "--detach", "--progress", "quiet")
		b := startInBackground(t, dir, "up", "--detach", "--progress", "quiet")
		ra, rb := a.wait(), b.wait()
		for _, r := range []result{ra, rb} {
			if r.code != 0 {
				t.Errorf("%s: one of two concurrent ups failed:\n%s", round, r)
			}
			if strings.Contains(r.stderr, "envd down") {
				t.Errorf("%s: an up tells the user to down the other:\n%s", round, r.stderr)
			}
		}
		if out, err := sshCat(t, name, "/etc/hostname"); err != nil || out == "" {
			t.Errorf("%s: ssh after two concurrent ups: %q %v", round, out, err)
		}
	}
	for i := 1; i <= 3; i++ {
		both(fmt.Sprintf("new environment, round %d", i))
		mustEnvd(t, dir, "down")
		checkForgotten(t, name)
	}
	mustEnvd(t, dir, "up", "--detach", "--progress", "quiet")
	id := containerID(t, name)
	dockerCmd(t, "stop", "envd-"+name)
	both("stopped environment")
	if containerID(t, name) != id {
		t.Error("two ups of a stopped environment replaced its container")
	}
}

// TestLifecycleInterrupt: Ctrl-C while up waits for the environment (the
// container exists) removes what up made and exits 130; a failed first up
// leaves no state on disk either.
func TestLifecycleInterrupt(t *testing.T) {
	requireE2E(t)
	name := "lc-int"
	// The daemon waits for the init command: up waits ~2 s for it after ssh
	// answers, a window after the container was made.
	dir := project(t, name, map[string]string{"build.envd": lcBuild +
		"    runtime.init(commands=[\"sleep 30\"])\n    runtime.daemon(commands=[[\"sleep\", \"1000\"]])\n"})
	t.Cleanup(func() { envd(t, dir, "destroy"); dockerCmd(t, "rmi", "-f", name+":dev") })
	build(t, dir)

	up := startInBackground(t, dir, "up", "--detach", "--progress", "quiet")
	eventually(t, 60*time.Second, "the container is made", func() error {
		_, err := dockerCmd(t, "inspect", "envd-"+name)
		return err
	})
	if err := up.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	r := up.wait()
	if r.code != 130 {
		t.Errorf("Ctrl-C during up: want exit 130\n%s", r)
	}
	checkForgotten(t, name)

	r = envd(t, dir, "up", "--detach", "--progress", "quiet", "--timeout", "1ms")
	if r.code != 1 {
		t.Errorf("up with --timeout 1ms: want exit 1\n%s", r)
	}
	checkForgotten(t, name)

	// Ctrl-C while up resumes a stopped environment stops it again: it is
	// never removed, and its files stay.
	mustEnvd(t, dir, "up", "--detach", "--progress", "quiet")
	writePrecious(t, dir, name)
	id := containerID(t, name)
	dockerCmd(t, "stop", "envd-"+name)
	up = startInBackground(t, dir, "up", "--detach", "--progress", "quiet")
	eventually(t, 60*time.Second, "the container runs again", func() error {
		if st := containerState(t, name); st != "running" {
			return fmt.Errorf("state %s", st)
		}
		return nil
	})
	up.cmd.Process.Signal(syscall.SIGINT)
	if r := up.wait(); r.code != 130 {
		t.Errorf("Ctrl-C while resuming: want exit 130\n%s", r)
	}
	if st := containerState(t, name); st != "exited" || containerID(t, name) != id {
		t.Fatalf("after Ctrl-C while resuming the container is %q, want the same one, exited", st)
	}
	mustEnvd(t, dir, "up", "--detach", "--progress", "quiet")
	checkPrecious(t, name, "after Ctrl-C while resuming, and envd up")

	// envd killed outright during up (no cleanup possible): the next up
	// finishes the job, ssh entry included; down then leaves nothing.
	mustEnvd(t, dir, "down")
	up = startInBackground(t, dir, "up", "--detach", "--progress", "quiet")
	eventually(t, 60*time.Second, "the container is made", func() error {
		_, err := dockerCmd(t, "inspect", "envd-"+name)
		return err
	})
	up.cmd.Process.Kill()
	up.wait()
	mustEnvd(t, dir, "up", "--detach", "--progress", "quiet")
	if out, err := sshCat(t, name, "/etc/hostname"); err != nil || out == "" {
		t.Errorf("ssh after an up that was killed and an up again: %q %v", out, err)
	}
	mustEnvd(t, dir, "down")
	checkForgotten(t, name)
}

// TestLifecycleDockerRestart: Docker restarted under a running environment;
// it is back by itself, its files intact, ssh answers at the same place.
// It stops the machine's dockerd (scripts/setup.sh starts it again), so it
// runs only when asked: ENVD_E2E_RESTART_DOCKER=1, which `make test` sets
// for a run of this test alone after all the others.
func TestLifecycleDockerRestart(t *testing.T) {
	requireE2E(t)
	if os.Getenv("ENVD_E2E_RESTART_DOCKER") != "1" {
		t.Skip("restarts dockerd: set ENVD_E2E_RESTART_DOCKER=1")
	}
	infra := envOr("ENVD_INFRA_STATE", "/var/lib/envd-infra")
	pidData, err := os.ReadFile(filepath.Join(infra, "dockerd.pid"))
	if err != nil {
		t.Skipf("dockerd was not started by scripts/setup.sh: %v", err)
	}
	name := "lc-dockerd"
	dir := project(t, name, map[string]string{"build.envd": lcBuild})
	t.Cleanup(func() { envd(t, dir, "destroy") })
	mustEnvd(t, dir, "up", "--detach", "--progress", "quiet")
	writePrecious(t, dir, name)

	var pid int
	fmt.Sscan(string(pidData), &pid)
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatalf("stopping dockerd (pid %d): %v", pid, err)
	}
	eventually(t, 90*time.Second, "dockerd exits", func() error {
		if syscall.Kill(pid, 0) == nil {
			return fmt.Errorf("pid %d still there", pid)
		}
		return nil
	})
	// Its output goes to a file: the dockerd it starts keeps the script's
	// stdout open, so a pipe would never reach EOF.
	logPath := filepath.Join(t.TempDir(), "setup.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	setup := exec.Command("bash", "../scripts/setup.sh")
	setup.Stdout, setup.Stderr = logFile, logFile
	err = setup.Run()
	logFile.Close()
	if err != nil {
		out, _ := os.ReadFile(logPath)
		t.Fatalf("scripts/setup.sh: %v\n%s", err, out)
	}

	eventually(t, 60*time.Second, "the environment is back and answers ssh", func() error {
		if st := containerState(t, name); st != "running" {
			return fmt.Errorf("container %s", st)
		}
		out, err := sshCat(t, name, "~/p.txt")
		if err == nil && out != "precious" {
			t.Fatalf("after the Docker restart ~/p.txt is %q, want precious", out)
		}
		return err
	})
	if r := mustEnvd(t, dir, "up", "--detach"); !strings.Contains(r.stdout, "already running") {
		t.Errorf("up after the Docker restart:\n%s", r)
	}
}
