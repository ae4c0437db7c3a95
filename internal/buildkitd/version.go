package buildkitd

import (
	"fmt"
	"runtime/debug"
)

// VersionIn is the BuildKit module a binary's build information names
// ("unknown" when none): the client library envd speaks, and the version
// its managed builder is meant to run.
func VersionIn(bi *debug.BuildInfo) string {
	if bi == nil {
		return "unknown"
	}
	for _, d := range bi.Deps {
		if d.Path == "github.com/moby/buildkit" {
			if d.Replace != nil {
				return d.Replace.Version
			}
			return d.Version
		}
	}
	return "unknown"
}

// thisVersion is the BuildKit this binary is built with.
func thisVersion() string {
	bi, _ := debug.ReadBuildInfo()
	return VersionIn(bi)
}

// installHint says how to get buildkitd without this repository's Makefile:
// the version envd is built with, static (the builder image needs that) and
// with its version stamped as a release's is. `go install` of it is refused
// (BuildKit's go.mod has exclude directives), so it is built in the module
// cache, as its own main module.
func installHint(v string) string {
	if v == "unknown" || v == "" {
		v = "VERSION"
	}
	return fmt.Sprintf("go mod download github.com/moby/buildkit@%[1]s && "+
		"(cd \"$(go env GOMODCACHE)/github.com/moby/buildkit@%[1]s\" && "+
		"CGO_ENABLED=0 go build -ldflags \"-X github.com/moby/buildkit/version.Version=%[1]s\" -o \"$(go env GOPATH)/bin/buildkitd\" ./cmd/buildkitd)", v)
}
