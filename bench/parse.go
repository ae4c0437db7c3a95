package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/buildkit/client"

	"envd.dev/envd/internal/testing/pyindex"
)

// result is one build.
type result struct {
	Workload, Tool, Scenario string
	Rep                      int
	Seconds                  float64
	Skipped                  bool  // envd: the build was skipped without a solve
	Steps, Cached            int   // as the tool counts them
	Bytes                    int64 // wheel bytes downloaded
	Wheels                   int   // wheel downloads
	Redownloaded             int   // downloads of wheels already downloaded since the cold start
	HostRx                   int64 // bytes the host's default interface received during the build (all traffic)
	Layers, NewLayers        int   // the image's layers, and how many of them Docker did not have before
	Load1                    float64
	Files                    map[string]int     // wheel file -> downloads
	Installed                []string           // distributions pip (or uv) reported installing, normalized
	Installer                string             // envd: what installed the Python packages (uv or pip)
	EnvdCPU                  float64            // envd: the CPU seconds envd itself used (its pprof profile)
	Phases                   map[string]float64 // envd: seconds connecting, building, loading into Docker
	steps                    []step             // BuildKit vertices, for per-step timings
	text                     string             // the build's log output, for pip's lines
	output                   []byte             // stdout and stderr as printed, kept with -logs
}

func (r result) stepsText() string {
	switch {
	case r.Skipped:
		return "skipped (no solve)"
	case r.Steps == 0:
		return ""
	}
	return fmt.Sprintf("%d/%d steps cached", r.Cached, r.Steps)
}

// step is one BuildKit vertex.
type step struct {
	name       string
	cached     bool
	seconds    float64
	start, end time.Time // zero when the output gives durations only (docker's plain progress)
	log        string
}

// parseRawJSON reads `--progress rawjson` output: one client.SolveStatus per line. Lines that are not JSON
// (messages around the build) are skipped.
func parseRawJSON(out []byte) ([]step, string) {
	type vertex struct {
		step
		order int
	}
	byDigest := map[string]*vertex{}
	var text strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var st client.SolveStatus
		if json.Unmarshal(line, &st) != nil {
			continue
		}
		for _, v := range st.Vertexes {
			x := byDigest[v.Digest.String()]
			if x == nil {
				x = &vertex{order: len(byDigest)}
				byDigest[v.Digest.String()] = x
			}
			x.name, x.cached = v.Name, v.Cached
			if v.Started != nil && v.Completed != nil {
				x.start, x.end = *v.Started, *v.Completed
				x.seconds = x.end.Sub(x.start).Seconds()
			}
		}
		for _, l := range st.Logs {
			if x := byDigest[l.Vertex.String()]; x != nil {
				x.log += string(l.Data)
			}
			text.Write(l.Data)
		}
	}
	vs := make([]*vertex, 0, len(byDigest))
	for _, v := range byDigest {
		vs = append(vs, v)
	}
	slices.SortFunc(vs, func(a, b *vertex) int { return a.order - b.order })
	steps := make([]step, len(vs))
	for i, v := range vs {
		steps[i] = v.step
	}
	return steps, text.String()
}

var (
	plainLine   = regexp.MustCompile(`^#(\d+) (.*)$`)
	plainDone   = regexp.MustCompile(`^DONE ([0-9.]+)s$`)
	plainLog    = regexp.MustCompile(`^[0-9.]+ (.*)$`)
	plainCached = "CACHED"
)

// parsePlain reads `docker build --progress plain` output (BuildKit): "#N NAME" opens step N, then come
// "#N SECONDS LOG LINE", "#N CACHED" or "#N DONE 1.2s".
func parsePlain(out []byte) ([]step, string) {
	var steps []step
	index := map[string]int{}
	var text strings.Builder
	for _, line := range strings.Split(string(out), "\n") {
		m := plainLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		i, ok := index[m[1]]
		if !ok {
			index[m[1]] = len(steps)
			steps = append(steps, step{name: m[2]})
			continue
		}
		s, rest := &steps[i], m[2]
		switch {
		case rest == plainCached:
			s.cached = true
		case plainDone.MatchString(rest):
			s.seconds, _ = strconv.ParseFloat(plainDone.FindStringSubmatch(rest)[1], 64)
		case plainLog.MatchString(rest):
			l := plainLog.FindStringSubmatch(rest)[1] + "\n"
			s.log += l
			text.WriteString(l)
		}
	}
	return steps, text.String()
}

var dockerfileStep = regexp.MustCompile(`^\[(?:\S+ )?\d+/\d+\] (\S+)`)

// countDockerfileSteps counts the Dockerfile's instructions BuildKit ran or found cached; FROM is resolved, not
// run, as envd leaves its base image out of its count.
func countDockerfileSteps(steps []step) (total, cached int) {
	for _, s := range steps {
		m := dockerfileStep.FindStringSubmatch(s.name)
		if m == nil || m[1] == "FROM" {
			continue
		}
		total++
		if s.cached {
			cached++
		}
	}
	return total, cached
}

// parseLegacy counts the legacy builder's steps (but FROM) and those it took from its cache.
func parseLegacy(out string) (total, cached int) {
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, "Step "):
			if _, instr, ok := strings.Cut(line, " : "); ok && !strings.HasPrefix(strings.ToUpper(instr), "FROM ") {
				total++
			}
		case strings.Contains(line, "---> Using cache"):
			cached++
		}
	}
	return total, cached
}

type download struct {
	file  string
	bytes int64
}

var uvDownloading = regexp.MustCompile(`Downloading ([A-Za-z0-9._-]+) \(([0-9.]+)(B|KiB|MiB|GiB)\)`)

var pipDownloading = regexp.MustCompile(`Downloading (\S+?\.(?:whl|tar\.gz|zip))(?: \(([0-9.]+) (bytes|kB|MB|GB)\))?`)

// pipDownloads reads pip's "Downloading FILE (SIZE)" and uv's "Downloading NAME (SIZE)" lines. A URL is reduced
// to its file name. pip rounds the size it prints, and prints nothing in --quiet steps.
func pipDownloads(text string) []download {
	units := map[string]float64{"bytes": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}
	var out []download
	for _, m := range pipDownloading.FindAllStringSubmatch(text, -1) {
		f := m[1]
		if i := strings.LastIndex(f, "/"); i >= 0 {
			f = f[i+1:]
		}
		d := download{file: f}
		if m[2] != "" {
			v, _ := strconv.ParseFloat(m[2], 64)
			d.bytes = int64(v * units[m[3]])
		}
		out = append(out, d)
	}
	// uv names the distribution, not the file, and only when it is over 1 MiB: smaller downloads go unseen.
	uvUnits := map[string]float64{"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}
	for _, m := range uvDownloading.FindAllStringSubmatch(text, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		out = append(out, download{file: pyindex.NormalizeName(m[1]), bytes: int64(v * uvUnits[m[3]])})
	}
	return out
}

var (
	pipInstalled = regexp.MustCompile(`(?m)^\s*Successfully installed (.+)$`)
	uvInstalled  = regexp.MustCompile(`(?m)^\s*\+ ([A-Za-z0-9._-]+)==\S+\s*$`)
)

// installedPackages lists the distributions a build's log says were installed: pip's "Successfully installed
// name-1.0 other-2.0" and uv's " + name==1.0" lines, names normalized, sorted, once each.
func installedPackages(text string) []string {
	var names []string
	for _, m := range pipInstalled.FindAllStringSubmatch(text, -1) {
		for _, nv := range strings.Fields(m[1]) {
			if i := strings.LastIndex(nv, "-"); i > 0 {
				names = append(names, pyindex.NormalizeName(nv[:i]))
			}
		}
	}
	for _, m := range uvInstalled.FindAllStringSubmatch(text, -1) {
		names = append(names, pyindex.NormalizeName(m[1]))
	}
	slices.Sort(names)
	return slices.Compact(names)
}
