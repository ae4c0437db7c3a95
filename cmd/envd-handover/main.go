// Command envd-handover serves envd's hand-over registry inside a builder
// container on another machine (see internal/handover/handovercmd).
package main

import (
	"os"

	"envd.dev/envd/internal/handover/handovercmd"
)

func main() {
	os.Exit(handovercmd.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
