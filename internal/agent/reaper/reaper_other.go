//go:build !linux

package reaper

import (
	"fmt"
	"os"
)

// ForkReap is only implemented on Linux, where containers run.
func ForkReap() int {
	fmt.Fprintln(os.Stderr, "envd-agent: running as PID 1 is only supported on Linux")
	return 1
}
