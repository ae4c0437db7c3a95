package compile

import (
	"context"
	"strings"
	"testing"
)

func TestPlan(t *testing.T) {
	env := languagesEnv()
	env.Base.Dev = true
	plan, err := Plan(context.Background(), env, Options{Platform: LinuxAMD64, Project: "demo", CABundle: true})
	if err != nil {
		t.Fatal(err)
	}
	// In order, each after what it needs; branches of a merge are lettered.
	want := []string{
		"Plan for demo (docker.io/library/debian:bookworm); nothing is built.",
		"  1  image docker.io/library/debian:bookworm",
		"python runtime: apt-get install python3 python3-venv [build.envd:2:5]",
		"cache /var/cache/apt = envd-apt-archives (locked)",
		"dev environment: user envd",
		"in parallel, then merged:",
		"a)", "read envd-agent binary",
		"b)", "python packages: pip install numpy>=1.26 six [build.envd:4:5]",
		"cache /root/.cache/pip = envd-pip-cache (shared)",
		"secret envd-ca-bundle at /run/envd/ca-bundle.crt (not stored in the image)",
		"c)", "system packages: apt-get install",
		"merge independent stages",
		"language packages: apt-get install",
		"in parallel, then merged:",
		"a)", "R packages: ggplot2 [build.envd:6:5]",
		"b)", "download https://julialang-s3.julialang.org/",
		"c)", "rust 1.82.0: rustup [build.envd:8:5]",
		"merge language stages",
		"run: cargo --version [build.envd:13:5]",
		"Cache mounts (kept by the builder between builds",
		"envd-apt-archives", "/var/cache/apt", "locked", "steps 3, 9, 11",
		"envd-pip-cache", "/root/.cache/pip", "shared", "steps 8, 23",
		"Python packages show as one step: the build first resolves them together (with uv",
	}
	rest := plan
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Fatalf("plan lacks %q (in order):\n%s", w, plan)
		}
		rest = rest[i+len(w):]
	}
	if strings.Contains(plan, "diff") {
		t.Errorf("diffs are internal and not steps:\n%s", plan)
	}
}

func TestPlanWithoutBranches(t *testing.T) {
	env := pythonEnv()
	env.Python = nil
	env.PythonPackages = nil
	plan, err := Plan(context.Background(), env, Options{Platform: LinuxAMD64, Project: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plan, "in parallel") || !strings.Contains(plan, "system packages: apt-get install curl git") {
		t.Errorf("plan:\n%s", plan)
	}
}

// The Codex CLI and an image copied from follow the image's platform,
// as every other download does.
func TestCodexAndCopyFollowThePlatform(t *testing.T) {
	for _, tt := range []struct {
		p    Platform
		want string
	}{{LinuxAMD64, "codex-x86_64-unknown-linux-musl.tar.gz"}, {LinuxARM64, "codex-aarch64-unknown-linux-musl.tar.gz"}} {
		if got := codexURL(tt.p, "0.98.0"); !strings.HasSuffix(got, "/rust-v0.98.0/"+tt.want) {
			t.Errorf("%s: codex URL %s, want it to end in %s", tt.p, got, tt.want)
		}
	}
}
