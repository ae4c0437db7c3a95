// Package multicall lets the envd binary be each of the programs envd puts
// into images, chosen by the name it runs as: envd-agent (PID 1 of a dev
// environment), envd-handover and buildctl (the builder container's
// hand-over registry and `buildctl dial-stdio`), and buildkitd (the
// builder itself). So envd alone, as `go install` gives it, has all it
// needs; the binaries `make build` puts beside it are used first when they
// are there.
package multicall

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"envd.dev/envd/internal/handover/handovercmd"
)

// The names envd answers to besides its own.
const (
	Agent    = "envd-agent"
	Handover = "envd-handover"
	Buildctl = "buildctl"
	Daemon   = "buildkitd" // BuildKit's daemon (internal/bkdaemon)
)

// Streams are a program's standard streams.
type Streams struct {
	In       io.Reader
	Out, Err io.Writer
}

// Run runs the program argv[0] names, if it is one of those, and returns its
// exit code; ok is false for any other name (envd itself). version is what
// `envd-agent version` prints.
func Run(argv []string, s Streams, version string) (code int, ok bool) {
	if len(argv) == 0 {
		return 0, false
	}
	switch name := filepath.Base(argv[0]); {
	case name == Agent || strings.HasPrefix(name, Agent+"-linux-"):
		return runAgent(argv[1:], s, version), true
	case name == Handover:
		return handovercmd.Main(argv[1:], s.In, s.Out, s.Err), true
	case name == Buildctl:
		return buildctl(argv[1:], s), true
	case name == Daemon:
		return runDaemon(argv[1:], s, version), true
	}
	return 0, false
}

// Stdio are the process's own streams.
func Stdio() Streams { return Streams{os.Stdin, os.Stdout, os.Stderr} }

func usageError(s Streams, format string, args ...any) int {
	fmt.Fprintf(s.Err, format+"\n", args...)
	return 2
}
