//go:build unix

package agentcmd

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	gossh "golang.org/x/crypto/ssh"

	"envd.dev/envd/internal/testing/sshtest"

	"envd.dev/envd/internal/agent"
)

// With this variable set the test binary is envd-agent, so the tests can
// run it as a process (and as PID 1) without building it.
const beAgentEnv = "ENVD_AGENT_TEST_BE_AGENT"

func TestMain(m *testing.M) {
	if os.Getenv(beAgentEnv) == "1" {
		os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	goleak.VerifyTestMain(m)
}

func TestUsage(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{"no command", nil, 2, "", "usage: envd-agent"},
		{"unknown command", []string{"start"}, 2, "", `unknown command "start"`},
		{"help", []string{"--help"}, 0, "usage: envd-agent", ""},
		{"version", []string{"version"}, 0, "dev\n", ""},
		{"bad flag", []string{"run", "--nope"}, 2, "", "flag provided but not defined: -nope"},
		{"extra argument", []string{"status", "x"}, 2, "", `unexpected argument "x"`},
		{"missing config", []string{"run", "--config", "/nonexistent/agent.json"}, 1, "", "agent config: open /nonexistent/agent.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Main(tt.args, &stdout, &stderr)
			if code != tt.wantCode || !strings.Contains(stdout.String(), tt.wantStdout) || !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d, %q, %q",
					code, stdout.String(), stderr.String(), tt.wantCode, tt.wantStdout, tt.wantStderr)
			}
		})
	}
}

func TestStatus(t *testing.T) {
	env := newTestEnv(t, nil)
	t.Setenv(agent.ConfigPathEnv, env.configPath)

	var stdout, stderr bytes.Buffer
	if code := Main([]string{"status"}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "no status yet") {
		t.Fatalf("before the agent ran: exit %d, stderr %q", code, stderr.String())
	}
	if err := os.MkdirAll(env.cfg.LogDir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, env.cfg.StatusPath(), []byte(`{"services": []}`))
	stdout.Reset()
	if code := Main([]string{"status"}, &stdout, &stderr); code != 0 || stdout.String() != `{"services": []}` {
		t.Fatalf("exit %d, stdout %q", code, stdout.String())
	}
}

// The agent as users get it: a process that serves SSH, runs its services
// and stops cleanly on SIGTERM.
func TestRunAndStop(t *testing.T) {
	env := newTestEnv(t, []agent.Service{{Name: "sleeper", Command: []string{"sleep", "1000"}}})
	cmd := exec.Command(os.Args[0], "run") // config from the environment
	cmd.Env = append(os.Environ(), beAgentEnv+"=1", agent.ConfigPathEnv+"="+env.configPath)
	env.runAgent(t, cmd)
}

// As the container's PID 1, in a PID namespace of its own; needs the
// privilege to create one, so it is skipped elsewhere.
func TestRunAsPID1(t *testing.T) {
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("no unshare")
	}
	if err := exec.Command(unshare, "--pid", "--fork", "--mount-proc", "true").Run(); err != nil {
		t.Skipf("cannot create a PID namespace here: %v", err)
	}
	// The init command leaves an orphan that exits at once: PID 1 must reap it.
	env := newTestEnv(t, []agent.Service{{Name: "sleeper", Command: []string{"sleep", "1000"}}})
	env.cfg.Init = []agent.Command{{Name: "orphan", Command: []string{"sh", "-c", "(true &)"}}}
	env.write(t)

	cmd := exec.Command(unshare, "--pid", "--fork", "--mount-proc", "--kill-child",
		os.Args[0], "run", "--config", env.configPath)
	cmd.Env = append(os.Environ(), beAgentEnv+"=1")
	env.onReady = func(t *testing.T, c *gossh.Client) {
		out := sshRun(t, c, "echo $PPID; cat /proc/1/cmdline | tr '\\0' ' '; ps -eo stat= 2>/dev/null | grep -c Z || true")
		fields := strings.Fields(out)
		if len(fields) < 3 || !strings.Contains(out, " run --config ") {
			t.Fatalf("inside the namespace: %q", out)
		}
		if zombies := fields[len(fields)-1]; zombies != "0" {
			t.Errorf("%s zombies in the namespace", zombies)
		}
	}
	// SIGTERM goes to unshare's child, the namespace's PID 1.
	env.signal = func(t *testing.T, cmd *exec.Cmd) {
		out, err := exec.Command("pgrep", "-P", strconv.Itoa(cmd.Process.Pid)).Output()
		if err != nil {
			t.Fatalf("finding PID 1 of the namespace: %v", err)
		}
		pid := strings.Fields(string(out))[0]
		if err := exec.Command("kill", "-TERM", pid).Run(); err != nil {
			t.Fatal(err)
		}
	}
	env.runAgent(t, cmd)
}

// testEnv is a config for a real agent process, on a free local port.
type testEnv struct {
	dir        string
	cfg        *agent.Config
	configPath string
	client     gossh.Signer
	hostKey    gossh.PublicKey
	onReady    func(*testing.T, *gossh.Client)
	signal     func(*testing.T, *exec.Cmd) // default: SIGTERM to cmd
}

func newTestEnv(t *testing.T, services []agent.Service) *testEnv {
	t.Helper()
	dir := t.TempDir()
	host, hostPEM := sshtest.NewKey(t)
	client, _ := sshtest.NewKey(t)
	writeFile(t, filepath.Join(dir, "host_key"), hostPEM)
	writeFile(t, filepath.Join(dir, "authorized_keys"), gossh.MarshalAuthorizedKey(client.PublicKey()))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()

	env := &testEnv{
		dir:        dir,
		configPath: filepath.Join(dir, "agent.json"),
		client:     client,
		hostKey:    host.PublicKey(),
		cfg: &agent.Config{
			SSH: agent.SSHConfig{
				Listen:         addr,
				HostKey:        filepath.Join(dir, "host_key"),
				AuthorizedKeys: filepath.Join(dir, "authorized_keys"),
				Shell:          "/bin/sh",
			},
			Workdir:  dir,
			LogDir:   filepath.Join(dir, "logs"),
			Services: services,
		},
	}
	env.write(t)
	return env
}

func (e *testEnv) write(t *testing.T) {
	t.Helper()
	data, err := json.Marshal(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, e.configPath, data)
}

// runAgent starts cmd, waits until SSH answers and every service runs,
// checks a command over SSH, sends SIGTERM and expects a clean exit with
// the services gone.
func (e *testEnv) runAgent(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("agent output:\n%s", logs.String())
		}
	})

	var st *agent.Status
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		st, err = agent.ReadStatus(e.cfg.StatusPath())
		if err == nil && len(st.Services) > 0 && st.Services[0].State == agent.StateRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("services never ran; status %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	c, err := gossh.Dial("tcp", e.cfg.SSH.Listen, &gossh.ClientConfig{
		User:            e.cfg.LoginUser(), // the only name the agent accepts
		Auth:            []gossh.AuthMethod{gossh.PublicKeys(e.client)},
		HostKeyCallback: gossh.FixedHostKey(e.hostKey),
		Timeout:         5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	t.Cleanup(func() {
		if t.Failed() && e.signal == nil { // a killed agent leaves its services
			_ = syscall.Kill(st.Services[0].PID, syscall.SIGKILL)
		}
	})
	if out := sshRun(t, c, "echo hello"); out != "hello\n" {
		t.Fatalf("ssh output %q", out)
	}
	if e.onReady != nil {
		e.onReady(t, c)
	}

	start := time.Now()
	if e.signal != nil {
		e.signal(t, cmd)
	} else if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(8 * time.Second):
		t.Fatal("agent did not stop within 8 s of SIGTERM")
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
	t.Logf("stopped in %s", time.Since(start))
	// (In a PID namespace the pid is the namespace's; all of it is gone.)
	if pid := st.Services[0].PID; e.signal == nil && syscall.Kill(pid, 0) == nil && !isZombie(pid) {
		t.Errorf("service process %d survived the agent", pid)
	}
}

func sshRun(t *testing.T, c *gossh.Client, cmd string) string {
	t.Helper()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	out, err := sess.CombinedOutput(cmd)
	if err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, out)
	}
	return string(out)
}

func isZombie(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(stat)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+1:])[0] == "Z"
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
