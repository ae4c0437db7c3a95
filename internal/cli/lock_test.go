package cli

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestLock(t *testing.T) {
	isolate(t)
	t.Setenv("PATH", "/usr/bin:/bin") // isolate emptied it; git serves the local repository
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	repo := filepath.Join(t.TempDir(), "envdlib")
	git := func(args ...string) {
		t.Helper()
		args = append([]string{"-C", repo, "-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)
		if out, err := exec.Command("git", args...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	if err := os.MkdirAll(repo, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo, "lib.envd"), []byte("def f():\n    install.apt_packages([\"git\"])\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	git("init", "-q", "-b", "main")
	git("add", "lib.envd")
	git("commit", "-q", "-m", "lib")

	dir := writeProject(t, map[string]string{"build.envd": "lib = include(git=\"" + repo + "\", ref=\"main\")\ndef build():\n    lib.f()\n"})
	code, out, errOut := runEnvd(t, dir, "lock")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var lock struct {
		Modules []struct{ Git, Ref, Commit string }
	}
	if err := json.Unmarshal([]byte(out), &lock); err != nil || len(lock.Modules) != 1 || lock.Modules[0].Git != repo || len(lock.Modules[0].Commit) != 40 {
		t.Fatalf("lock %q: %v", out, err)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "envd.lock")); string(data) != out {
		t.Errorf("printed %q, file holds %q", out, data)
	}

	plain := writeProject(t, map[string]string{"build.envd": "def build():\n    pass\n"})
	if code, _, errOut := runEnvd(t, plain, "lock"); code != 0 || !strings.Contains(errOut, "includes no git modules") {
		t.Errorf("exit %d: %s", code, errOut)
	}
}
