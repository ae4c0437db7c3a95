package reaper

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

// The tests run the reaper in a child copy of the test binary (the helper)
// that is a child subreaper: orphans are re-parented to it as they would be
// to PID 1, without needing a PID namespace or root.
const helperEnv = "ENVD_REAPER_TEST_SCRIPT"

func TestMain(m *testing.M) {
	if script := os.Getenv(helperEnv); script != "" {
		os.Exit(helper(script))
	}
	goleak.VerifyTestMain(m)
}

func helper(script string) int {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Println("prctl:", err)
		return 1
	}
	// While the script runs, it asks (kill -USR1 $PPID) for our orphans.
	ask := make(chan os.Signal, 1)
	signal.Notify(ask, syscall.SIGUSR1)
	go func() {
		for range ask {
			orphans, zombies := children(os.Getpid())
			fmt.Printf("orphans=%d zombies=%d\n", orphans, zombies)
		}
	}()
	env := append(os.Environ(), helperEnv+"=")
	return run("/bin/sh", []string{"sh", "-c", script}, env)
}

// children counts the processes whose parent is pid, other than the shell
// running the script, and how many of them are zombies.
func children(pid int) (orphans, zombies int) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(stat)
		comm := s[strings.IndexByte(s, '(')+1 : strings.LastIndexByte(s, ')')]
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 2 || f[1] != strconv.Itoa(pid) || comm == "sh" {
			continue
		}
		orphans++
		if f[0] == "Z" {
			zombies++
		}
	}
	return orphans, zombies
}

type helperProc struct {
	cmd   *exec.Cmd
	lines *bufio.Scanner
}

func startHelper(t *testing.T, script string) *helperProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+script)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return &helperProc{cmd: cmd, lines: bufio.NewScanner(stdout)}
}

func (h *helperProc) line(t *testing.T) string {
	t.Helper()
	if !h.lines.Scan() {
		t.Fatalf("helper output ended: %v", h.lines.Err())
	}
	return h.lines.Text()
}

func (h *helperProc) exitCode(t *testing.T) int {
	t.Helper()
	done := make(chan struct{})
	go func() {
		for h.lines.Scan() { // drain
		}
		_ = h.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
		return h.cmd.ProcessState.ExitCode()
	case <-time.After(5 * time.Second):
		t.Fatal("helper did not exit")
		return -1
	}
}

func TestReapsOrphans(t *testing.T) {
	// The subshell exits at once, so its sleep is orphaned to the reaper; it
	// exits 0.2 s later and must then be reaped.
	h := startHelper(t, `(sleep 0.2 &); sleep 0.05; kill -USR1 $PPID; sleep 0.6; kill -USR1 $PPID; sleep 0.05; exit 7`)
	if got := h.line(t); got != "orphans=1 zombies=0" {
		t.Fatalf("while the orphan runs: %q, want it adopted", got)
	}
	if got := h.line(t); got != "orphans=0 zombies=0" {
		t.Fatalf("after the orphan exited: %q, want it reaped", got)
	}
	if code := h.exitCode(t); code != 7 {
		t.Fatalf("exit code %d, want the child's 7", code)
	}
}

func TestForwardsSignals(t *testing.T) {
	h := startHelper(t, `trap 'exit 42' TERM; echo ready; while :; do sleep 0.02; done`)
	if got := h.line(t); got != "ready" {
		t.Fatalf("got %q", got)
	}
	if err := h.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := h.exitCode(t); code != 42 {
		t.Fatalf("exit code %d, want 42 from the child's TERM trap", code)
	}
}

func TestExitCodeOfKilledChild(t *testing.T) {
	h := startHelper(t, `kill -KILL $$`)
	if code := h.exitCode(t); code != 128+9 {
		t.Fatalf("exit code %d, want 137", code)
	}
}
