package cli

import (
	"runtime/debug"
	"testing"
)

func TestReadBuildInfo(t *testing.T) {
	deps := []*debug.Module{{Path: "github.com/moby/buildkit", Version: "v0.34.2"}}
	vcs := func(rev, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}
	}
	for _, tt := range []struct {
		name     string
		bi       *debug.BuildInfo
		stamped  string
		version  string
		id       string
		buildkit string
	}{
		{"go install @v1.2.0", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.0"}, Deps: deps}, "", "v1.2.0", "v1.2.0", "v0.34.2"},
		{"a checkout, clean", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Deps: deps, Settings: vcs("0123456789abcdef0123", "false")}, "",
			"devel+0123456789ab", "devel+0123456789ab", "v0.34.2"},
		{"a checkout, edited", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("0123456789abcdef0123", "true")}, "",
			"devel+0123456789ab-dirty", "devel+0123456789ab-dirty", "unknown"},
		{"stamped, with its commit in the key", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Deps: deps, Settings: vcs("fedcba9876543210", "false")}, "v2.0.0",
			"v2.0.0", "v2.0.0+fedcba987654", "v0.34.2"},
		{"no build info", nil, "", "devel", "devel", "unknown"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := readBuildInfo(tt.bi, tt.stamped)
			if b.Version != tt.version || b.ID != tt.id || b.BuildKit != tt.buildkit {
				t.Errorf("got %+v, want version %q id %q buildkit %q", b, tt.version, tt.id, tt.buildkit)
			}
		})
	}
	// Two commits of envd give two build keys.
	a := readBuildInfo(&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("aaaaaaaaaaaaaaaa", "false")}, "")
	b := readBuildInfo(&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("bbbbbbbbbbbbbbbb", "false")}, "")
	if a.ID == b.ID {
		t.Error("two commits, one build id")
	}
}
