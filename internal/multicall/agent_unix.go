//go:build unix

package multicall

import "envd.dev/envd/internal/agent/agentcmd"

func runAgent(args []string, s Streams, version string) int {
	agentcmd.Version = version
	return agentcmd.Main(args, s.Out, s.Err)
}
