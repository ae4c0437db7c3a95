//go:build unix

// Command envd-agent is the entrypoint of every envd environment (see
// internal/agent/agentcmd). envd can be its agent too; this binary is the
// small one, which `make build` puts beside envd.
package main

import (
	"os"

	"envd.dev/envd/internal/agent/agentcmd"
)

func main() {
	os.Exit(agentcmd.Main(os.Args[1:], os.Stdout, os.Stderr))
}
