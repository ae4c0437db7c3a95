package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// machine is what the report says about where it ran.
type machine struct {
	cpu, memory, kernel, os string
	cores                   int
	docker, storage         string
	buildkit, envd, envdSHA string
	commit                  string
	loadBefore, loadAfter   [3]float64
	started, finished       time.Time
	pipCA                   string
}

func (m *machine) collect(ctx context.Context, b *bench) {
	m.cores = runtime.NumCPU()
	m.cpu = cpuModel()
	m.memory = memTotal()
	m.kernel = firstLine(readFile("/proc/sys/kernel/osrelease"))
	m.os = osRelease()
	m.docker = trimOutput(ctx, b.o.docker, "version", "--format", "server {{.Server.Version}} (API {{.Server.APIVersion}}), client {{.Client.Version}}")
	m.storage = trimOutput(ctx, b.o.docker, "info", "--format", "{{.Driver}}, cgroup {{.CgroupVersion}}")
	// The copies the run uses (bench.startTools), not bin/, which may be rebuilt meanwhile.
	envd := filepath.Join(b.dir, "bin", "envd")
	m.envd = trimOutput(ctx, envd, "version")
	if b.o.buildkitd != "" {
		m.buildkit = trimOutput(ctx, filepath.Join(b.dir, "bin", "buildkitd"), "--version")
	} else if _, bk, ok := strings.Cut(m.envd, "\nbuildkit "); ok {
		m.buildkit = "envd's own, " + strings.Fields(bk)[0]
	}
	m.envdSHA = fileSHA(envd)
	m.commit = trimOutput(ctx, "git", "describe", "--always", "--dirty", "--abbrev=12")
	m.pipCA = caBundle()
}

func trimOutput(ctx context.Context, name string, args ...string) string {
	out, err := output(ctx, nil, name, args...)
	if err != nil {
		return "unknown (" + strings.TrimSpace(firstLine(out)) + ")"
	}
	return strings.ReplaceAll(strings.TrimSpace(out), "\n", "; ")
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

func cpuModel() string {
	for _, l := range strings.Split(readFile("/proc/cpuinfo"), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func memTotal() string {
	for _, l := range strings.Split(readFile("/proc/meminfo"), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return fmt.Sprintf("%.1f GiB", kb/(1<<20))
		}
	}
	return "unknown"
}

func osRelease() string {
	for _, l := range strings.Split(readFile("/etc/os-release"), "\n") {
		if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return "unknown"
}

func fileSHA(p string) string {
	f, err := os.Open(p)
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, f)
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// loadAverage is /proc/loadavg's 1, 5 and 15 minute figures.
func loadAverage() [3]float64 {
	var l [3]float64
	f := strings.Fields(readFile("/proc/loadavg"))
	for i := 0; i < 3 && i < len(f); i++ {
		l[i], _ = strconv.ParseFloat(f[i], 64)
	}
	return l
}

// hostRxBytes is what the interface of the default route has received so far: PyPI and Debian downloads of
// envd's steps (host network) and of docker build's containers (NAT) both pass it; local traffic does not.
func hostRxBytes() int64 {
	ifc := ""
	for _, l := range strings.Split(readFile("/proc/net/route"), "\n")[1:] {
		if f := strings.Fields(l); len(f) > 2 && f[1] == "00000000" {
			ifc = f[0]
			break
		}
	}
	for _, l := range strings.Split(readFile("/proc/net/dev"), "\n") {
		name, rest, ok := strings.Cut(l, ":")
		if !ok || strings.TrimSpace(name) != ifc {
			continue
		}
		if f := strings.Fields(rest); len(f) > 0 {
			n, _ := strconv.ParseInt(f[0], 10, 64)
			return n
		}
	}
	return 0
}
