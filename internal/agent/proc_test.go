//go:build unix

package agent

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestLookPathUsesTheGivenPATH(t *testing.T) {
	dir := t.TempDir()
	tool := filepath.Join(dir, "envd-tool")
	writeFile(t, tool, []byte("#!/bin/sh\n"))
	if err := os.Chmod(tool, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "not-executable"), []byte("x"))

	tests := []struct {
		name              string
		cmd               string
		path              string
		want              string
		expectErrContains string
	}{
		{"found", "envd-tool", "/nonexistent:" + dir, tool, ""},
		{"not in PATH", "envd-tool", "/usr/bin", "", `command "envd-tool" not found in PATH`},
		{"not executable", "not-executable", dir, "", "not found in PATH"},
		{"slash is used as is", "./local/tool", "", "./local/tool", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := lookPath(tt.cmd, []string{"PATH=/wrong", "PATH=" + tt.path})
			if tt.expectErrContains != "" {
				if err == nil || !strings.Contains(err.Error(), tt.expectErrContains) {
					t.Fatalf("err = %v, want %q", err, tt.expectErrContains)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("lookPath = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		script string
		want   int
	}{
		{"exit 0", 0},
		{"exit 3", 3},
		{"kill -TERM $$", 128 + 15},
		{"kill -KILL $$", 128 + 9},
	}
	for _, tt := range tests {
		cmd := exec.Command("sh", "-c", tt.script)
		_ = cmd.Run()
		if got := exitCode(cmd.ProcessState); got != tt.want {
			t.Errorf("%s: exit code %d, want %d", tt.script, got, tt.want)
		}
	}
}

func TestStopSessionReachesEveryGroup(t *testing.T) {
	// A job in its own process group, as an interactive shell makes, that
	// ignores SIGHUP: only the SIGKILL after the grace period ends it.
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("needs bash for job control")
	}
	// The job prints its pid once it ignores SIGHUP.
	cmd := exec.Command(bash, "-c", `set -m; (trap "" HUP; echo $BASHPID; exec sleep 1000) & wait`)
	cmd.SysProcAttr = newSessionAttr()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() { stopSession(cmd.Process.Pid, syscall.SIGKILL, 0) })
	pid := parsePID(t, "pid "+strings.TrimSpace(readUntil(t, out, "\n")))
	if pgid, _ := syscall.Getpgid(pid); pgid == cmd.Process.Pid {
		t.Fatalf("job %d is in the leader's process group", pid)
	}

	start := time.Now()
	stopSession(cmd.Process.Pid, syscall.SIGHUP, 200*time.Millisecond)
	<-done
	waitGone(t, pid, time.Second)
	if d := time.Since(start); d < 200*time.Millisecond || d > 2*time.Second {
		t.Errorf("stopSession took %s, want the grace period", d)
	}
}
