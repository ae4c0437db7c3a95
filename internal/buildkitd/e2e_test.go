package buildkitd

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/buildkit/client"

	"envd.dev/envd/internal/testing/daemontest"
)

// e2eOptions skips unless ENVD_E2E=1 on a machine that can run the managed
// builder (root, runc, and make build's envd as buildkitd, or ENVD_BUILDKITD).
func e2eOptions(t *testing.T) Options {
	t.Helper()
	if os.Getenv("ENVD_E2E") != "1" {
		t.Skip("set ENVD_E2E=1 to run against a real buildkitd")
	}
	daemontest.Buildkitd(t)
	if _, err := (Options{}).preflight(); err != nil {
		t.Skipf("cannot run the managed builder here: %v", err)
	}
	dir, err := os.MkdirTemp("", "envd-bk") // short: the socket lives in it
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Dir: dir, Logf: t.Logf}
	t.Cleanup(func() {
		if err := Stop(context.Background(), o); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		os.RemoveAll(dir)
	})
	return o
}

// TestHelperEnsure is the "envd" process of TestManagedBuildkitd: it starts
// the daemon and exits, which the daemon must survive.
func TestHelperEnsure(t *testing.T) {
	dir := os.Getenv("ENVD_TEST_HELPER_DIR")
	if dir == "" {
		t.Skip("helper process only")
	}
	addr, err := Ensure(context.Background(), Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("addr:", addr)
}

func TestManagedBuildkitd(t *testing.T) {
	o := e2eOptions(t)
	ctx := context.Background()

	// 1. First start from a separate process that then exits.
	helper := exec.Command(os.Args[0], "-test.run=^TestHelperEnsure$", "-test.v")
	helper.Env = append(os.Environ(), "ENVD_TEST_HELPER_DIR="+o.Dir)
	out, err := helper.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	st := status(t, o)
	if !st.Running || !st.Ready || st.Mirror != "" {
		t.Fatalf("after the helper exited: %+v", st)
	}
	pid1 := st.PID

	// 2. Reuse: same daemon, and it answers with a worker.
	addr, err := Ensure(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if addr != "unix://"+o.Dir+"/buildkitd.sock" {
		t.Errorf("addr = %q", addr)
	}
	if pid := status(t, o).PID; pid != pid1 {
		t.Fatalf("second Ensure started pid %d, want reuse of %d", pid, pid1)
	}
	c, err := client.New(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := c.ListWorkers(ctx)
	c.Close()
	if err != nil || len(ws) == 0 {
		t.Fatalf("ListWorkers: %v, %d workers", err, len(ws))
	}

	// 3. A new mirror restarts it, and says so.
	var mu sync.Mutex
	var notes []string
	o.Mirror = "http://127.0.0.1:5999"
	o.Logf = func(f string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		notes = append(notes, fmt.Sprintf(f, a...))
	}
	if _, err := Ensure(ctx, o); err != nil {
		t.Fatal(err)
	}
	st = status(t, o)
	if st.PID == pid1 || !st.Ready || alive(pid1) {
		t.Fatalf("after the mirror changed: %+v (old pid %d alive: %v)", st, pid1, alive(pid1))
	}
	if st.Mirror != "127.0.0.1:5999" {
		t.Errorf("mirror = %q", st.Mirror)
	}
	toml, _ := os.ReadFile(o.configPath())
	if !strings.Contains(string(toml), `mirrors = ["127.0.0.1:5999"]`) {
		t.Errorf("buildkitd.toml:\n%s", toml)
	}
	if !strings.Contains(strings.Join(notes, "\n"), "registry mirror changed from none to 127.0.0.1:5999") {
		t.Errorf("no restart note in %q", notes)
	}

	// 4. Stop: process and socket gone.
	if err := Stop(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if !waitGone(st.PID, time.Second) {
		t.Errorf("pid %d still running", st.PID)
	}
	if _, err := os.Lstat(o.socketPath()); !os.IsNotExist(err) {
		t.Errorf("socket still there: %v", err)
	}
	if st := status(t, o); st.Running {
		t.Errorf("after Stop: %+v", st)
	}
}

func status(t *testing.T, o Options) State {
	t.Helper()
	st, err := Status(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestManagedBuildkitdLongDir: a state dir too long for a unix socket puts
// the socket in /run.
func TestManagedBuildkitdLongDir(t *testing.T) {
	o := e2eOptions(t)
	o.Dir = o.Dir + "/" + strings.Repeat("d", 100)
	t.Cleanup(func() { Stop(context.Background(), o) }) // before e2eOptions removes the parent
	addr, err := Ensure(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(addr, "unix:///run/envd-buildkitd-") {
		t.Fatalf("addr = %q", addr)
	}
	if st := status(t, o); !st.Ready || st.Addr != addr {
		t.Fatalf("status: %+v", st)
	}
	if err := Stop(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(strings.TrimPrefix(addr, "unix://")); !os.IsNotExist(err) {
		t.Errorf("socket still there: %v", err)
	}
}
