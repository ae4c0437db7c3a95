//go:build !linux

package multicall

func runDaemon(_ []string, s Streams, _ string) int {
	return usageError(s, "envd as buildkitd runs on Linux only")
}
