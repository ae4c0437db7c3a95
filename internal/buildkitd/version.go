package buildkitd

import "runtime/debug"

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

// Version is the BuildKit this binary is built with.
func Version() string {
	bi, _ := debug.ReadBuildInfo()
	return VersionIn(bi)
}
