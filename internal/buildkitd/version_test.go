package buildkitd

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionIn(t *testing.T) {
	dep := func(v string, replace *debug.Module) *debug.Module {
		return &debug.Module{Path: "github.com/moby/buildkit", Version: v, Replace: replace}
	}
	tests := []struct {
		name string
		bi   *debug.BuildInfo
		want string
	}{
		{"none", nil, "unknown"},
		{"not a dependency", &debug.BuildInfo{Deps: []*debug.Module{{Path: "golang.org/x/sys", Version: "v0.1.0"}}}, "unknown"},
		{"pinned", &debug.BuildInfo{Deps: []*debug.Module{dep("v0.34.2", nil)}}, "v0.34.2"},
		{"replaced", &debug.BuildInfo{Deps: []*debug.Module{dep("v0.34.2", &debug.Module{Version: "v0.34.3-fork"})}}, "v0.34.3-fork"},
	}
	for _, tt := range tests {
		if got := VersionIn(tt.bi); got != tt.want {
			t.Errorf("%s: VersionIn = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// The hint builds the BuildKit this binary is built with, static.
func TestInstallHint(t *testing.T) {
	v := "v0.34.2"
	h := installHint(v)
	for _, want := range []string{"go mod download github.com/moby/buildkit@" + v, "CGO_ENABLED=0 go build", "version.Version=" + v, "./cmd/buildkitd"} {
		if !strings.Contains(h, want) {
			t.Errorf("hint %q lacks %q", h, want)
		}
	}
	if h := installHint("unknown"); !strings.Contains(h, "buildkit@VERSION") {
		t.Errorf("with no version known: %q", h)
	}
}
