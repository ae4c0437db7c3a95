package cli

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// profileEnv names a file that receives a CPU profile of the whole command
// (go tool pprof FILE). The benchmark reads it to tell envd's own time from
// BuildKit's.
const profileEnv = "ENVD_CPUPROFILE"

// startProfile starts the CPU profile ENVD_CPUPROFILE asks for; the returned
// function writes it out. A profile that cannot start is reported, not fatal.
func startProfile() func() {
	path := os.Getenv(profileEnv)
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err == nil {
		if err = pprof.StartCPUProfile(f); err != nil {
			f.Close()
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "envd: %s: %v\n", profileEnv, err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "envd: %s: %v\n", profileEnv, err)
		}
	}
}
