package buildkitd

import (
	"runtime/debug"
	"testing"

	"github.com/moby/buildkit/client"
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

func TestDescribeVersion(t *testing.T) {
	for _, tt := range []struct {
		v    client.BuildkitVersion
		want string
	}{
		{client.BuildkitVersion{Version: "v0.34.2", Revision: "3a1b2c"}, "v0.34.2"},
		{client.BuildkitVersion{Version: "v0.34.2", Revision: "envd devel+abc"}, "v0.34.2 (envd devel+abc)"},
		{client.BuildkitVersion{}, "unknown"},
	} {
		if got := describeVersion(tt.v); got != tt.want {
			t.Errorf("describeVersion(%+v) = %q, want %q", tt.v, got, tt.want)
		}
	}
}
