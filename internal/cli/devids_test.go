package cli

import (
	"context"
	"os"
	"testing"

	"envd.dev/envd/internal/compile"
)

func TestDevIDsFollowTheHostUserWhereTheProjectIsShared(t *testing.T) {
	tests := []struct {
		name     string
		shared   bool
		uid, gid int
		want     compile.DevIDs
	}{
		{"shared, a user", true, 1234, 100, compile.DevIDs{UID: 1234, GID: 100}},
		{"shared, root", true, 0, 0, compile.DevIDs{}},
		{"shared, no uids (windows)", true, -1, -1, compile.DevIDs{}},
		{"copied, a user", false, 1234, 1234, compile.DevIDs{}},
		{"copied, root", false, 0, 0, compile.DevIDs{}},
	}
	for _, tt := range tests {
		if got := devIDsOf(tt.shared, tt.uid, tt.gid); got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
	if got, want := devIDs(true), devIDsOf(true, os.Getuid(), os.Getgid()); got != want {
		t.Errorf("devIDs(true) = %+v, want the host user's %+v", got, want)
	}
}

// TestPlanChoosesTheDevUser: a dev image's plan carries the dev IDs for
// the project's transport (envd build alone: shared), and its build key
// depends on them.
func TestPlanChoosesTheDevUser(t *testing.T) {
	isolate(t)
	t.Setenv("ENVD_AGENT", hostAgent(t))
	dev := writeProject(t, map[string]string{"build.envd": "def build():\n    base(os=\"debian12\", language=\"python3\")\n"})
	plain := writeProject(t, map[string]string{"build.envd": "def build():\n    base(image=\"debian:bookworm\")\n"})

	var p *buildPlan
	for _, copied := range []bool{true, false} {
		var err error
		if p, err = (&buildOptions{path: dev, file: "build.envd", progress: "auto", projectCopied: copied}).plan(context.Background()); err != nil {
			t.Fatal(err)
		}
		if want := devIDs(!copied); p.devUser != want {
			t.Errorf("copied=%v: dev user %+v, want %+v", copied, p.devUser, want)
		}
	}
	if p.buildKey == "" {
		t.Fatal("no build key")
	}
	keys := map[string]compile.DevIDs{}
	for _, ids := range []compile.DevIDs{{}, {UID: 1234, GID: 1234}, {UID: 1234, GID: 100}} {
		p.devUser = ids
		k, err := p.key(p.files, "")
		if err != nil {
			t.Fatal(err)
		}
		if other, ok := keys[k]; ok {
			t.Errorf("dev users %+v and %+v share the build key %s", ids, other, k)
		}
		keys[k] = ids
	}
	p.devUser = compile.DevIDs{UID: compile.DevUID, GID: compile.DevUID}
	k, _ := p.key(p.files, "")
	if ids, ok := keys[k]; !ok || ids != (compile.DevIDs{}) {
		t.Errorf("1000:1000 given and the default have different keys")
	}

	p, err := (&buildOptions{path: plain, file: "build.envd", progress: "auto"}).plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if p.devUser != (compile.DevIDs{}) {
		t.Errorf("an image without a dev user got %+v", p.devUser)
	}
}
