//go:build !unix

package multicall

func runAgent(_ []string, s Streams, _ string) int {
	return usageError(s, "envd-agent runs inside Linux containers only")
}
