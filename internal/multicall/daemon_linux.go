package multicall

import (
	"envd.dev/envd/internal/bkdaemon"
	"envd.dev/envd/internal/buildkitd"
)

func runDaemon(args []string, s Streams, version string) int {
	return bkdaemon.Main(args, s.Err, bkdaemon.Info{BuildKit: buildkitd.Version(), Envd: version})
}
