package cli

import (
	"fmt"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"envd.dev/envd/internal/buildkitd"
)

// Version is envd's version. A release stamps it at link time (-ldflags
// "-X envd.dev/envd/internal/cli.Version=..."); otherwise it comes from the
// build information Go records: the module's version for `go install
// envd.dev/envd/cmd/envd@VERSION`, else the commit it was built from.
var Version = ""

// thisBuild is what this binary knows about itself, read once.
var thisBuild = sync.OnceValue(func() buildInfo {
	bi, _ := debug.ReadBuildInfo()
	return readBuildInfo(bi, Version)
})

// BuildVersion is envd's version (see Version).
func BuildVersion() string { return thisBuild().Version }

type buildInfo struct {
	Version  string // for people: v1.2.3, or devel+COMMIT[-dirty]
	ID       string // for the build key: changes with every build of another source
	BuildKit string // the BuildKit envd is built with, and its managed builder runs
}

func readBuildInfo(bi *debug.BuildInfo, stamped string) buildInfo {
	b := buildInfo{Version: stamped, BuildKit: "unknown"}
	if bi == nil {
		if b.Version == "" {
			b.Version = "devel"
		}
		b.ID = b.Version
		return b
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	rev := settings["vcs.revision"]
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" && settings["vcs.modified"] == "true" {
		rev += "-dirty"
	}
	if b.Version == "" {
		switch {
		case bi.Main.Version != "" && bi.Main.Version != "(devel)":
			b.Version = bi.Main.Version
		case rev != "":
			b.Version = "devel+" + rev
		default:
			b.Version = "devel"
		}
	}
	b.ID = b.Version
	if rev != "" && !strings.Contains(b.ID, rev) {
		b.ID += "+" + rev
	}
	b.BuildKit = buildkitd.VersionIn(bi)
	return b
}

func newVersionCmd(s streams) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print envd's version and the BuildKit it is built with",
		Args:  exactArgs(0),
		RunE: func(*cobra.Command, []string) error {
			b := thisBuild()
			fmt.Fprintf(s.out, "envd %s\nbuildkit %s (the client library, and the managed builder)\n", b.Version, b.BuildKit)
			return nil
		},
	}
}
