package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"envd.dev/envd/internal/testing/pyindex"
)

// TestTeamCache: a build exports its cache to a registry; a builder that
// never built the environment (a second managed buildkitd, with its own
// state, as on a teammate's machine) imports it and builds the same image
// without downloading a Python package or running an install step. The
// index is a plain one (no metadata files, no Range), where resolving alone
// would download every wheel: the team cache carries the resolve step too.
func TestTeamCache(t *testing.T) {
	requireE2E(t)
	srv := startIndex(t, true, []pyindex.Option{pyindex.WithoutMetadata()},
		wheel{name: "alpha", version: "1.0"},
		wheel{name: "beta", version: "2.0", requires: []string{"gamma"}},
		wheel{name: "gamma", version: "3.0"},
	)
	name := "e2e-teamcache"
	dir := project(t, name, map[string]string{"build.envd": buildFile(srv.URL(), nil, []string{"alpha", "beta"})})
	image := name + ":dev"
	removeImage(t, image)
	ref := fmt.Sprintf("127.0.0.1:5000/envd-e2e/cache:%d", time.Now().UnixNano())

	first := build(t, dir, "--export-cache", "type=registry,ref="+ref)
	if len(installSteps(first)) != 3 {
		t.Fatalf("the first build ran install steps %q, want alpha, beta and gamma's", installSteps(first))
	}

	// The teammate: another managed builder, with nothing in its cache.
	teammate := filepath.Join(stateDir, "tm")
	os.MkdirAll(teammate, 0o700)
	t.Setenv("XDG_DATA_HOME", teammate)
	mustEnvd(t, dir, "bootstrap", "--registry-mirror", mirror)
	t.Cleanup(func() {
		envd(t, dir, "bootstrap", "--stop")
		os.RemoveAll(teammate)
	})
	dockerCmd(t, "rmi", "-f", image) // not on the teammate's machine
	srv.Reset()
	second := build(t, dir, "--import-cache", ref)
	if second.Skipped || second.Steps == 0 {
		t.Fatalf("the teammate's build was not built: %+v", second)
	}
	if installs := installSteps(second); len(installs) != 0 {
		t.Errorf("the teammate's builder ran install steps %q, want none (all from the team cache)", installs)
	}
	if n := srv.TotalDownloads(); n != 0 {
		t.Errorf("the teammate's build downloaded %d wheels from the index, want 0: %v", n, srv.DownloadCounts())
	}
	if out := runInImage(t, image, "python", "-c", "import alpha, beta, gamma; print(alpha.__version__, beta.__version__)"); out != "1.0 2.0\n" {
		t.Errorf("the image built from the team cache imports %q", out)
	}
	if lock := runInImage(t, image, "cat", "/opt/envd/pylock.toml"); !strings.Contains(lock, `name = "gamma"`) {
		t.Errorf("the image's lock does not list gamma, beta's dependency:\n%s", lock)
	}

	// A cache that is not there is a warning of BuildKit's, not a failure:
	// the build runs its steps (the builder's own cache still serves).
	dockerCmd(t, "rmi", "-f", image)
	if r := envd(t, dir, "build", "--import-cache", "127.0.0.1:5000/envd-e2e/cache:missing"); r.code != 0 {
		t.Errorf("a missing import cache failed the build: %s", r)
	}

	// A malformed cache flag: exit 2, before anything is built.
	if r := envd(t, dir, "build", "--export-cache", "type=nfs,ref=x"); r.code != 2 || !strings.Contains(r.stderr, "--export-cache") || !strings.Contains(r.stderr, `unknown type "nfs"`) {
		t.Errorf("a bad --export-cache: %s", r)
	}
}
