//go:build unix

package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startSupervisor runs a fast-restarting supervisor for cfg until the test
// ends (or stop is called) and returns stop, which waits for Run to return.
func startSupervisor(t *testing.T, cfg *Config) (sup *Supervisor, stop func()) {
	t.Helper()
	dir := t.TempDir()
	cfg.SSH = SSHConfig{HostKey: "unused", AuthorizedKeys: "unused", Shell: "/bin/sh"}
	cfg.Workdir = dir
	cfg.LogDir = filepath.Join(dir, "logs")
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	sup = NewSupervisor(cfg, testLogger(t))
	sup.minBackoff, sup.maxBackoff = 20*time.Millisecond, 100*time.Millisecond
	sup.stopTimeout = 500 * time.Millisecond

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := sup.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	var once bool
	stop = func() {
		if !once {
			once = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return sup, stop
}

// waitStatus polls status.json until ok accepts it, or fails after 5 s.
func waitStatus(t *testing.T, cfg *Config, ok func(*Status) bool) *Status {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	var st *Status
	for time.Now().Before(deadline) {
		var err error
		if st, err = ReadStatus(cfg.StatusPath()); err == nil && ok(st) {
			return st
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("status.json never got there; last: %+v", st)
	return nil
}

func TestServiceRestartsWithBackoff(t *testing.T) {
	cfg := &Config{Services: []Service{{Name: "blip", Command: []string{"sh", "-c", "echo blip; exit 2"}}}}
	startSupervisor(t, cfg)

	st := waitStatus(t, cfg, func(st *Status) bool {
		return st.Services[0].Restarts >= 3 && st.Services[0].State == StateBackoff
	})
	svc := st.Services[0]
	if svc.LastExitCode == nil || *svc.LastExitCode != 2 || svc.LastError != "exited with code 2" {
		t.Errorf("status %+v, want last exit 2", svc)
	}
	log, err := os.ReadFile(cfg.LogPath("blip"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(log), "blip\n"); n < 3 {
		t.Errorf("log has %d runs, want >= 3:\n%s", n, log)
	}
	if !strings.Contains(string(log), "exited with code 2; restarting in") {
		t.Errorf("log does not say why it restarts:\n%s", log)
	}
}

func TestMissingCommandDoesNotStopOthers(t *testing.T) {
	cfg := &Config{Services: []Service{
		{Name: "streamlit", Command: []string{"no-such-command-envd", "run", "app.py"}},
		{Name: "ok", Command: []string{"sleep", "1000"}},
	}}
	startSupervisor(t, cfg)

	st := waitStatus(t, cfg, func(st *Status) bool {
		return st.Services[0].Restarts >= 2 && st.Services[1].State == StateRunning
	})
	missing := st.Services[0]
	if want := `command "no-such-command-envd" not found in PATH`; missing.LastError != want {
		t.Errorf("last_error = %q, want %q", missing.LastError, want)
	}
	if missing.State != StateBackoff || missing.PID != 0 {
		t.Errorf("missing service = %+v, want backoff without pid", missing)
	}
	if st.Services[1].PID == 0 || !alive(st.Services[1].PID) {
		t.Errorf("other service not running: %+v", st.Services[1])
	}
	log, _ := os.ReadFile(cfg.LogPath("streamlit"))
	if !strings.Contains(string(log), "not found in PATH") {
		t.Errorf("service log does not explain:\n%s", log)
	}
}

func TestInitRunsInOrderBeforeServices(t *testing.T) {
	step := func(s string) []string { return []string{"sh", "-c", "echo " + s + " >> order"} }
	cfg := &Config{
		Init: []Command{
			{Name: "first", Command: step("1")},
			{Name: "fails", Command: []string{"sh", "-c", "echo 2 >> order; sleep 0.1; exit 4"}},
			{Name: "third", Command: step("3")},
		},
		Services: []Service{{Name: "svc", Command: []string{"sh", "-c", "echo svc >> order; exec sleep 1000"}}},
	}
	startSupervisor(t, cfg)

	var order []byte
	st := waitStatus(t, cfg, func(st *Status) bool {
		order, _ = os.ReadFile(filepath.Join(cfg.Workdir, "order"))
		return strings.Contains(string(order), "svc")
	})
	if string(order) != "1\n2\n3\nsvc\n" {
		t.Errorf("order = %q", order)
	}
	want := []State{StateSucceeded, StateFailed, StateSucceeded}
	for i, in := range st.Init {
		if in.State != want[i] {
			t.Errorf("init %s: state %s, want %s", in.Name, in.State, want[i])
		}
	}
	if in := st.Init[1]; in.ExitCode == nil || *in.ExitCode != 4 || in.Error != "exited with code 4" {
		t.Errorf("failed init status = %+v", in)
	}
}

func TestStopKillsServicesWithinDeadline(t *testing.T) {
	cfg := &Config{Services: []Service{
		// ignores SIGTERM, and has a child in its session
		{Name: "stubborn", Command: []string{"sh", "-c", `trap "" TERM; sleep 1000 & echo $! > child; while :; do sleep 0.02; done`}},
		{Name: "polite", Command: []string{"sleep", "1000"}},
	}}
	sup, stop := startSupervisor(t, cfg)
	st := waitStatus(t, cfg, func(st *Status) bool {
		_, err := os.Stat(filepath.Join(cfg.Workdir, "child"))
		return err == nil && st.Services[0].State == StateRunning && st.Services[1].State == StateRunning
	})
	child, _ := os.ReadFile(filepath.Join(cfg.Workdir, "child"))
	pids := []int{st.Services[0].PID, st.Services[1].PID, parsePID(t, "pid "+strings.TrimSpace(string(child)))}

	start := time.Now()
	stop()
	if d := time.Since(start); d > sup.stopTimeout+time.Second {
		t.Errorf("stop took %s, want about %s", d, sup.stopTimeout)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("process %d survived Stop", pid)
		}
	}
	final, _ := ReadStatus(cfg.StatusPath())
	for _, svc := range final.Services {
		if svc.State != StateExited || svc.PID != 0 {
			t.Errorf("after stop: %+v", svc)
		}
	}
}

func TestRestartPolicies(t *testing.T) {
	cfg := &Config{Services: []Service{
		{Name: "once", Command: []string{"false"}, Restart: RestartNever},
		{Name: "done", Command: []string{"true"}, Restart: RestartOnFailure},
	}}
	startSupervisor(t, cfg)
	st := waitStatus(t, cfg, func(st *Status) bool {
		return st.Services[0].State == StateExited && st.Services[1].State == StateExited
	})
	for _, svc := range st.Services {
		if svc.Restarts != 0 {
			t.Errorf("%s restarted %d times", svc.Name, svc.Restarts)
		}
	}
}

func TestServiceSeesConfigEnvAndPath(t *testing.T) {
	bin := t.TempDir()
	writeFile(t, filepath.Join(bin, "envd-test-tool"), []byte("#!/bin/sh\necho \"$GREETING from $(pwd)\" > out\nexec sleep 1000\n"))
	if err := os.Chmod(filepath.Join(bin, "envd-test-tool"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := &Config{
		Env:      map[string]string{"GREETING": "hello", "PATH": bin + ":" + os.Getenv("PATH")},
		Services: []Service{{Name: "tool", Command: []string{"envd-test-tool"}}},
	}
	startSupervisor(t, cfg)
	waitStatus(t, cfg, func(st *Status) bool { return st.Services[0].State == StateRunning })
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if out, _ := os.ReadFile(filepath.Join(cfg.Workdir, "out")); len(out) > 0 {
			if want := "hello from " + cfg.Workdir + "\n"; string(out) != want {
				t.Fatalf("out = %q, want %q", out, want)
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("service never wrote its output")
}

// A service's own env reaches it, and only it: a secret there is in no argv
// and in no other process's environment. Its log is its user's only.
func TestServiceEnv(t *testing.T) {
	cfg := &Config{
		Env: map[string]string{"SHARED": "all"},
		Services: []Service{
			{Name: "holder", Command: []string{"sh", "-c", `echo "secret=$SECRET shared=$SHARED"; exec sleep 1000`}, Env: map[string]string{"SECRET": "s3cr3t", "SHARED": "mine"}},
			{Name: "other", Command: []string{"sh", "-c", `echo "secret=$SECRET shared=$SHARED"; exec sleep 1000`}},
		},
	}
	startSupervisor(t, cfg)
	waitStatus(t, cfg, func(st *Status) bool {
		return st.Services[0].State == StateRunning && st.Services[1].State == StateRunning
	})
	for name, want := range map[string]string{"holder": "secret=s3cr3t shared=mine\n", "other": "secret= shared=all\n"} {
		var got []byte
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) && !strings.Contains(string(got), "\n") {
			got, _ = os.ReadFile(cfg.LogPath(name))
			time.Sleep(10 * time.Millisecond)
		}
		if string(got) != want {
			t.Errorf("%s printed %q, want %q", name, got, want)
		}
		if mode := permOf(t, cfg.LogPath(name)); mode != 0o600 {
			t.Errorf("log of %s has mode %v, want 0600", name, mode)
		}
	}
	if mode := permOf(t, cfg.LogDir); mode != 0o700 {
		t.Errorf("log dir has mode %v, want 0700", mode)
	}
}

func permOf(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}
