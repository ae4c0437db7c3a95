// Command envd builds machine-learning development environments from build.envd.
package main

import (
	"os"

	"envd.dev/envd/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:]))
}
