// Command envd builds machine-learning development environments from
// build.envd. Run as envd-agent, envd-handover or buildctl (a link of that
// name), it is that program instead (internal/multicall).
package main

import (
	"os"

	"envd.dev/envd/internal/cli"
	"envd.dev/envd/internal/multicall"
)

func main() {
	if code, ok := multicall.Run(os.Args, multicall.Stdio(), cli.BuildVersion()); ok {
		os.Exit(code)
	}
	os.Exit(cli.Main(os.Args[1:]))
}
