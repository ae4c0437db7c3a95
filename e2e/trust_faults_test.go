package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// buildkitdsOfState counts the running buildkitd processes whose command
// line names this test run's state directory.
func buildkitdsOfState(t *testing.T) int {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	n := 0
	for _, p := range procs {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := strings.Split(string(data), "\x00")
		if filepath.Base(args[0]) == "buildkitd" && strings.Contains(string(data), stateDir) {
			n++
		}
	}
	return n
}

// TestConcurrentBuildsStartOneBuilder: two builds started at once on a
// machine whose builder is not running both succeed, share one managed
// buildkitd, and each image holds what its own build file says.
func TestConcurrentBuildsStartOneBuilder(t *testing.T) {
	requireE2E(t)
	mustEnvd(t, ".", "bootstrap", "--stop")
	t.Cleanup(func() { envd(t, ".", "bootstrap", "--registry-mirror", mirror) })

	var dirs []string
	for i := range 2 {
		name := fmt.Sprintf("ft-concurrent-%d", i)
		dirs = append(dirs, project(t, name, map[string]string{
			"build.envd": fmt.Sprintf(`def build():
    base(image="debian:bookworm", dev=False)
    run(commands=["echo built-%d > /which"])
`, i),
		}))
		removeImage(t, name+":dev")
	}
	results := make([]result, len(dirs))
	var wg sync.WaitGroup
	for i, dir := range dirs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = envd(t, dir, "build", "--progress", "plain", "--registry-mirror", mirror)
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.code != 0 {
			t.Fatalf("build %d of 2 failed: %s", i, r)
		}
		image := fmt.Sprintf("ft-concurrent-%d:dev", i)
		if got := strings.TrimSpace(runInImage(t, image, "cat", "/which")); got != fmt.Sprintf("built-%d", i) {
			t.Errorf("%s: /which = %q, want built-%d", image, got, i)
		}
	}
	if n := buildkitdsOfState(t); n != 1 {
		t.Errorf("%d managed buildkitds running after two concurrent first builds, want 1", n)
	}
}

// TestInterruptAtEachBuildPhase: Ctrl-C while envd connects, while a step
// runs and while the image is exported leaves no image tagged, and the next
// build works.
func TestInterruptAtEachBuildPhase(t *testing.T) {
	requireE2E(t)
	for _, tc := range []struct {
		phase string
		// ready says, from envd's stderr so far, that the phase is reached.
		ready func(stderr string) bool
		delay time.Duration // after ready
	}{
		{"connecting", func(string) bool { return true }, 150 * time.Millisecond},
		{"running a step", func(s string) bool { return strings.Contains(s, "marker-42") }, 0},
		{"exporting", func(s string) bool { return strings.Contains(s, "exporting to image") }, 0},
	} {
		t.Run(tc.phase, func(t *testing.T) {
			name := "ft-interrupt-" + strings.ReplaceAll(tc.phase, " ", "-")
			// The step writes enough that the export takes a moment, and
			// a nonce so no earlier run's cache answers for it.
			nonce := strconv.FormatInt(time.Now().UnixNano(), 36)
			dir := project(t, name, map[string]string{
				"build.envd": fmt.Sprintf(`def build():
    base(image="debian:bookworm", dev=False)
    run(commands=["echo marker-$((40+2)) %s", "head -c 300000000 /dev/urandom > /big", "sleep 2"])
`, nonce),
			})
			removeImage(t, name+":dev")
			cmd := exec.Command(envdBin, "build", "--progress", "plain", "--registry-mirror", mirror)
			cmd.Dir = dir
			stderr := &lockedBuffer{}
			cmd.Stderr = stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(3 * time.Minute)
			for !tc.ready(stderr.String()) && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			time.Sleep(tc.delay)
			code := interrupt(t, cmd, stderr)
			t.Logf("envd exited %d after SIGINT while %s", code, tc.phase)
			if code != 130 && code != 0 {
				t.Errorf("exit code %d after SIGINT, want 130\n%s", code, stderr.String())
			}
			if strings.Contains(stderr.String(), "panic:") || strings.Contains(stderr.String(), "goroutine ") {
				t.Errorf("stack trace after SIGINT:\n%s", stderr.String())
			}
			_, inspectErr := dockerCmd(t, "image", "inspect", name+":dev")
			switch {
			case code == 130 && inspectErr == nil:
				t.Errorf("an interrupted build left %s:dev tagged", name)
			case code == 0 && inspectErr != nil:
				t.Errorf("envd exited 0 (the build finished before the signal) but %s:dev is missing", name)
			}
			// The next build works and gives the whole image.
			mustEnvd(t, dir, "build", "--progress", "plain", "--registry-mirror", mirror)
			if out := runInImage(t, name+":dev", "sh", "-c", "wc -c < /big"); strings.TrimSpace(out) != "300000000" {
				t.Errorf("rebuilt image's /big has %s bytes, want 300000000", strings.TrimSpace(out))
			}
		})
	}
}
