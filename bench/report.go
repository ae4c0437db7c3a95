package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
)

var toolTitles = map[string]string{
	"envd":            "envd build",
	"envd-dev":        "envd build, dev image",
	"envd-container":  "envd build, builder in a container",
	"docker-legacy":   "docker build, legacy",
	"docker-buildkit": "docker build, BuildKit + cache mounts",
}

// cell is one tool's repetitions of one scenario.
type cell struct {
	min, median float64
	n           int
	mid         result // the median repetition (the lower one for an even count), for everything but time
}

func cellOf(rs []result) (cell, bool) {
	if len(rs) == 0 {
		return cell{}, false
	}
	rs = slices.Clone(rs)
	sort.Slice(rs, func(i, j int) bool { return rs[i].Seconds < rs[j].Seconds })
	n := len(rs)
	med := rs[n/2].Seconds
	if n%2 == 0 {
		med = (rs[n/2-1].Seconds + rs[n/2].Seconds) / 2
	}
	return cell{min: rs[0].Seconds, median: med, n: n, mid: rs[(n-1)/2]}, true
}

func (b *bench) cell(w, t, s string) (cell, bool) {
	var rs []result
	for _, r := range b.results {
		if r.Workload == w && r.Tool == t && r.Scenario == s {
			rs = append(rs, r)
		}
	}
	return cellOf(rs)
}

func secs(v float64) string {
	if v < 10 {
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func (b *bench) writeReport() error {
	var md strings.Builder
	b.reportHeader(&md)
	for _, w := range b.works {
		b.reportWorkload(&md, w)
	}
	b.reportTargets(&md)
	b.reportSteps(&md)
	md.WriteString(coldHistory)
	b.reportMethod(&md)
	b.reportAll(&md)

	if err := os.MkdirAll(filepath.Dir(b.o.out), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(b.o.out, []byte(md.String()), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(b.o.chart, []byte(b.chart()), 0o644); err != nil {
		return err
	}
	fmt.Printf("\nwrote %s and %s\n", b.o.out, b.o.chart)
	return nil
}

// coldHistory is what each change to envd's cold builds bought, measured
// when it landed (issue 12 asks for it here); the tables are the run's own.
const coldHistory = `## What changed envd's cold builds (issue 12)

Each change was measured when it landed (docs/decisions.md says why each works); the tables above are this run's.

| change | what it bought |
|---|---|
| A caching proxy in front of the index for the length of the build (` + "`internal/indexproxy`" + `): every wheel gets metadata, taken from the wheel fetched once, and the install step gets that same file | plain index, 634 MB: 1269 MB → 654.7 MB from the index, cold 61.4 s → 59.7 s (one repetition); adding a package 2.1 → 1.0 MB, 1.73 → 0.66 s |
| The branches that need no lock (apt's packages, pip beside uv from the host, editor extensions) build beside the resolve step, in the same BuildKit session | plain index, cold: 59.7 s (docker build on BuildKit 48.6 s, one repetition) → 41.8 s (44.5 s, medians of two) |
| One LocalID per build: the local sources (uv from the host, the agent, the build directory) are one vertex each, not one per step | what makes the line above work (the warmed steps are the image's very steps); uv is sent to the builder once a build |
| The image keeps its lock (` + "`/opt/envd/pylock.toml`" + `), so its graph holds the resolve step and a mode=max team cache carries it | a teammate's build on a plain index: the resolve downloaded every wheel again (3 of 3 in e2e ` + "`TestTeamCache`" + `) → none |
| A new image takes the layer order of the images built before it | second project, 634 MB: 8 of 14 layers new to Docker, 3.12 s → 4 of 14, 0.61 s |

Tried and dropped: resolving before the interpreter is installed, which would have run the resolve beside apt's
python3 (` + "`uv pip compile --python-version`" + ` in a base without Python fails: "No interpreter found"). Not cut: handing
the image to Docker (Docker pulls the new layers from envd's hand-over registry, 6–7 s of a 42 s cold build, where
dockerd's own BuildKit writes into Docker directly).

`

func (b *bench) command() string {
	return strings.TrimSpace("go run ./bench " + strings.Join(b.o.args, " "))
}

func (b *bench) reportHeader(md *strings.Builder) {
	m := b.machine
	fmt.Fprintf(md, "# Benchmarks: envd build against docker build\n\n")
	fmt.Fprintf(md, "Written by `%s` on %s (the run took %s). Run it again rather than editing this file; "+
		"`go run ./bench -h` lists the flags.\n\n", b.command(), m.started.UTC().Format("2006-01-02 15:04 MST"),
		m.finished.Sub(m.started).Round(time.Second))
	fmt.Fprintf(md, "Every tool builds the same environment (Debian bookworm from the local mirror, apt `python3` and a venv, "+
		"one apt package, Python packages by name and from `requirements.txt`) through the same scenarios, each changing "+
		"what the one before left: %s. Cells are **min / median** wall seconds of the build command over the repetitions; "+
		"the other figures are from the median repetition.\n\n", scenarioList(b.o.scenarios))
	fmt.Fprintf(md, "![wall time per scenario and tool](%s)\n\n", filepath.Base(b.o.chart))
	md.WriteString("## Machine\n\n| | |\n|---|---|\n")
	rows := [][2]string{
		{"CPU", fmt.Sprintf("%d × %s", m.cores, m.cpu)},
		{"memory", m.memory},
		{"OS, kernel", m.os + ", " + m.kernel},
		{"Docker", m.docker + "; " + m.storage},
		{"BuildKit (envd's managed buildkitd)", m.buildkit},
		{"BuildKit (docker build)", "dockerd's built-in BuildKit and Dockerfile frontend (Docker " + dockerServer(m.docker) + ")"},
		{"envd", fmt.Sprintf("%s, binary sha256 %s…, repository at `%s`", m.envd, m.envdSHA, m.commit)},
		{"load average (1, 5, 15 min)", fmt.Sprintf("before %s; after %s; highest 1-min figure at the start of a build %.2f",
			loadText(m.loadBefore), loadText(m.loadAfter), b.maxLoad())},
	}
	for _, r := range rows {
		fmt.Fprintf(md, "| %s | %s |\n", r[0], r[1])
	}
	md.WriteString("\nThe machine is shared: other work (CI, other builds) may have run at the same time; the load figures " +
		"say how busy it was, and the min column is the least disturbed repetition.\n\n")
}

func scenarioList(names []string) string {
	var out []string
	for _, n := range names {
		out = append(out, fmt.Sprintf("%s (`%s`)", scenarioTitle(n), n))
	}
	return strings.Join(out, ", ")
}

func dockerServer(v string) string {
	f := strings.Fields(v)
	if len(f) >= 2 {
		return f[1]
	}
	return v
}

func loadText(l [3]float64) string { return fmt.Sprintf("%.2f, %.2f, %.2f", l[0], l[1], l[2]) }

func (b *bench) maxLoad() float64 {
	m := 0.0
	for _, r := range b.results {
		m = max(m, r.Load1)
	}
	return m
}

func (b *bench) reportWorkload(md *strings.Builder, w *workload) {
	fmt.Fprintf(md, "## Workload: %s\n\n%s %d repetition(s).\n\n", w.title, w.about, w.reps)

	b.table(md, w, "Wall time, seconds (min / median)", func(c cell) string {
		return secs(c.min) + " / " + secs(c.median)
	})
	if c, ok := b.cell(w.name, "envd", "cold"); ok && c.mid.Installer != "" {
		fmt.Fprintf(md, "envd resolved and installed the Python packages with **%s** (`python_installer` in its `--metadata-file`).\n\n", c.mid.Installer)
	}
	if w.pypi {
		b.table(md, w, "Everything the host's network interface received during the build, MB: PyPI, Debian's mirror, "+
			"and whatever else the machine did meanwhile: the measure that sees every download, the small ones uv does not "+
			"report and the metadata files envd's resolve step reads", func(c cell) string {
			return fmt.Sprintf("%.1f", mb(c.mid.HostRx))
		})
		b.table(md, w, "Wheels the installers reported downloading, MB (pip's `Downloading` lines; uv's name only files over 1 MiB, "+
			"and envd's resolve step fetches metadata, not wheels), and how many of them this repetition had downloaded before", func(c cell) string {
			return fmt.Sprintf("%.1f (%d again)", mb(c.mid.Bytes), c.mid.Redownloaded)
		})
	} else {
		b.table(md, w, "Wheels downloaded, MB (counted by the index), and how many of them this repetition had downloaded before",
			func(c cell) string { return fmt.Sprintf("%.1f (%d again)", mb(c.mid.Bytes), c.mid.Redownloaded) })
	}
	b.table(md, w, "Layers new to Docker / layers of the image. Docker knows a layer by everything below it, so a "+
		"changed layer makes all layers above it new as well: each is moved and unpacked again", func(c cell) string {
		return fmt.Sprintf("%d/%d", c.mid.NewLayers, c.mid.Layers)
	})
	b.table(md, w, "Steps cached / steps (as each tool counts them; FROM and envd's base image not counted)", func(c cell) string {
		if s := c.mid.stepsText(); s != "" {
			return strings.TrimSuffix(s, " steps cached")
		}
		return "–"
	})
}

// table writes one row per scenario, one column per tool.
func (b *bench) table(md *strings.Builder, w *workload, title string, format func(cell) string) {
	fmt.Fprintf(md, "**%s**\n\n| scenario |", title)
	for _, t := range b.tools {
		fmt.Fprintf(md, " %s |", toolTitles[t.name()])
	}
	md.WriteString("\n|---|" + strings.Repeat("---:|", len(b.tools)) + "\n")
	for _, s := range b.o.scenarios {
		fmt.Fprintf(md, "| %s |", scenarioTitle(s))
		for _, t := range b.tools {
			c, ok := b.cell(w.name, t.name(), s)
			if !ok {
				md.WriteString(" – |")
				continue
			}
			fmt.Fprintf(md, " %s |", format(c))
		}
		md.WriteString("\n")
	}
	md.WriteString("\n")
}

// target is one of issue 5's targets, measured.
type target struct {
	what, measured string
	ok             bool
	miss           string // by how much, when missed
	why            string // where envd's time went, when missed
}

func (b *bench) targets(w *workload) []target {
	var ts []target
	add, okAdd := b.cell(w.name, "envd", "add-package")
	if okAdd {
		for _, c := range []struct {
			tool    string
			divisor float64
			source  string
		}{{"docker-legacy", 10, "issue 5 and DESIGN.md"}, {"docker-buildkit", 4, "issue 5; DESIGN.md says 1/3"}} {
			other, ok := b.cell(w.name, c.tool, "add-package")
			if !ok {
				continue
			}
			limit := other.median / c.divisor
			t := target{
				what:     fmt.Sprintf("add a package: ≤ 1/%g of %s (%s)", c.divisor, toolTitles[c.tool], c.source),
				measured: fmt.Sprintf("%s s vs %s s: 1/%.1f", secs(add.median), secs(other.median), other.median/add.median),
				ok:       add.median <= limit,
			}
			if !t.ok {
				t.miss = fmt.Sprintf("%s s over the %s s limit (%.1f× it)", secs(add.median-limit), secs(limit), add.median/limit)
				t.why = breakdown(add.mid)
			}
			ts = append(ts, t)
		}
		t := target{
			what:     "add a package: the others are not reinstalled (pip's `Successfully installed`, uv's ` + name==version` lines)",
			measured: fmt.Sprintf("installed %v", add.mid.Installed),
			ok:       slices.Equal(add.mid.Installed, []string{requirementName(w.add)}),
		}
		if !t.ok {
			t.miss = fmt.Sprintf("%d distribution(s) installed for one added", len(add.mid.Installed))
		}
		ts = append(ts, t)
	}
	again, builds := 0, 0
	for _, r := range b.results {
		if r.Workload == w.name && r.Tool == "envd" && r.Scenario != "cold" {
			again += r.Redownloaded
			builds++
		}
	}
	if builds > 0 {
		t := target{
			what:     "rebuilds download no wheel seen before",
			measured: fmt.Sprintf("%d wheel(s) downloaded again over %d rebuilds", again, builds),
			ok:       again == 0,
		}
		if add, ok := b.cell(w.name, "envd", "add-package"); ok && w.pypi {
			t.measured += fmt.Sprintf(" by the installers' lines, which miss uv's downloads under 1 MiB; the host received %.1f MB during add-package",
				mb(add.mid.HostRx))
			t.why = w.cacheNote
		}
		if !t.ok {
			t.miss = fmt.Sprintf("%d re-download(s)", again)
		}
		ts = append(ts, t)
	}
	if noop, ok := b.cell(w.name, "envd", "noop"); ok {
		t := target{what: "no-op `envd build` ≤ 0.5 s", measured: fmt.Sprintf("%s s (skipped: %v)", secs(noop.median), noop.mid.Skipped),
			ok: noop.median <= 0.5}
		if !t.ok {
			t.miss = fmt.Sprintf("%s s over", secs(noop.median-0.5))
		}
		ts = append(ts, t)
	}
	cold, ok1 := b.cell(w.name, "envd", "cold")
	bk, ok2 := b.cell(w.name, "docker-buildkit", "cold")
	if ok1 && ok2 {
		t := target{what: "cold: no slower than docker build on BuildKit", measured: fmt.Sprintf("%s s vs %s s", secs(cold.median), secs(bk.median)),
			ok: cold.median <= bk.median}
		if !t.ok {
			t.miss = fmt.Sprintf("%s s slower (%.0f%%)", secs(cold.median-bk.median), 100*(cold.median/bk.median-1))
			t.why = breakdown(cold.mid)
		}
		ts = append(ts, t)
	}
	return ts
}

func (b *bench) reportTargets(md *strings.Builder) {
	md.WriteString("## Targets (issue 5), medians\n\n")
	for _, w := range b.works {
		ts := b.targets(w)
		if len(ts) == 0 {
			continue
		}
		fmt.Fprintf(md, "**%s**\n\n| target | measured | met? | why (envd's median repetition) |\n|---|---|---|---|\n", w.title)
		for _, t := range ts {
			verdict := "yes"
			if !t.ok {
				verdict = "**no**: " + t.miss
			}
			fmt.Fprintf(md, "| %s | %s | %s | %s |\n", t.what, t.measured, verdict, t.why)
		}
		md.WriteString("\n")
	}
	md.WriteString("Time missing from these targets is broken down step by step in the next section.\n\n")
}

// reportSteps shows where envd's time goes, from BuildKit's per-step timings (--progress rawjson), for the
// median repetition of each scenario that solved.
func (b *bench) reportSteps(md *strings.Builder) {
	md.WriteString("## Where envd's time goes\n\n")
	md.WriteString("BuildKit's per-step timings (`--progress rawjson`) of envd's median repetition. *Outside the steps* is " +
		"the wall time not covered by any step: starting the CLI, reading the build file, resolving the base image's " +
		"config, the solve's own bookkeeping, and handing the image to Docker after the export (Docker pulls every " +
		"layer it lacks: see the layers table). Steps under 0.05 s are left out; steps overlap where they ran in " +
		"parallel. *envd's own CPU* is what envd's CPU profile (`ENVD_CPUPROFILE`, pprof) recorded for the whole " +
		"command. *Phases* are envd's own clock (`phases` in `--metadata-file`): connecting to the builder; the build " +
		"(resolve, solve, export); loading into Docker (its pull from the hand-over registry). For comparison, the slowest steps of docker build on BuildKit are shown.\n\n")
	for _, w := range b.works {
		for _, s := range b.o.scenarios {
			c, ok := b.cell(w.name, "envd", s)
			if !ok || c.mid.Skipped {
				continue
			}
			fmt.Fprintf(md, "**%s, %s**: %s s wall (median repetition %s s, %d of %d layers new to Docker)", w.name,
				scenarioTitle(s), secs(c.median), secs(c.mid.Seconds), c.mid.NewLayers, c.mid.Layers)
			if d, ok := b.cell(w.name, "docker-buildkit", s); ok {
				fmt.Fprintf(md, "; docker build on BuildKit %s s, slowest steps: %s", secs(d.median), slowest(d.mid.steps, 3))
			}
			md.WriteString("\n\n| envd step | cached | seconds |\n|---|---|---:|\n")
			for _, st := range topSteps(c.mid.steps, 8) {
				fmt.Fprintf(md, "| %s | %v | %s |\n", mdEscape(shortName(st.name)), st.cached, secs(st.seconds))
			}
			fmt.Fprintf(md, "| *outside the steps* | | %s |\n", secs(max(0, c.mid.Seconds-stepSpan(c.mid.steps))))
			fmt.Fprintf(md, "| *envd's own CPU (pprof)* | | %s |\n", secs(c.mid.EnvdCPU))
			fmt.Fprintf(md, "| *phases: %s* | | |\n\n", phasesText(c.mid.Phases))
		}
	}
}

// stepKinds sorts envd's steps into what a breakdown names, by the prefix compile gives their names.
var stepKinds = []struct{ prefix, kind string }{
	{"python packages: resolve", "resolving the whole Python set"},
	{"python packages", "package installs"},
	{"python runtime", "apt (python runtime)"},
	{"system packages", "apt (system packages)"},
	{"export", "export"},
}

// breakdown says where a build's time went: the time each kind of step ran (parallel steps counted once), and
// the time outside every step, with the layers Docker had to take.
func breakdown(r result) string {
	byKind := map[string][]step{}
	var kinds []string
	for _, s := range r.steps {
		kind := "other steps"
		for _, k := range stepKinds {
			if strings.HasPrefix(s.name, k.prefix) {
				kind = k.kind
				break
			}
		}
		if _, ok := byKind[kind]; !ok {
			kinds = append(kinds, kind)
		}
		byKind[kind] = append(byKind[kind], s)
	}
	sort.SliceStable(kinds, func(i, j int) bool { return stepSpan(byKind[kinds[i]]) > stepSpan(byKind[kinds[j]]) })
	var parts []string
	for _, k := range kinds {
		if span := stepSpan(byKind[k]); span >= 0.05 {
			parts = append(parts, fmt.Sprintf("%s %s s", k, secs(span)))
		}
	}
	parts = append(parts, fmt.Sprintf("outside the steps %s s, with %d of %d layers new to Docker; envd's own CPU %s s (pprof); phases: %s",
		secs(max(0, r.Seconds-stepSpan(r.steps))), r.NewLayers, r.Layers, secs(r.EnvdCPU), phasesText(r.Phases)))
	return fmt.Sprintf("of %s s: %s", secs(r.Seconds), strings.Join(parts, "; "))
}

func phasesText(p map[string]float64) string {
	var parts []string
	for _, name := range []string{"connect", "build", "load"} {
		if v, ok := p[name]; ok {
			parts = append(parts, fmt.Sprintf("%s %s s", name, secs(v)))
		}
	}
	if len(parts) == 0 {
		return "not recorded"
	}
	return strings.Join(parts, ", ")
}

func topSteps(steps []step, n int) []step {
	var out []step
	for _, s := range steps {
		if s.seconds >= 0.05 {
			out = append(out, s)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].seconds > out[j].seconds })
	if len(out) > n {
		out = out[:n]
	}
	return out
}

func slowest(steps []step, n int) string {
	var parts []string
	for _, s := range topSteps(steps, n) {
		parts = append(parts, fmt.Sprintf("%s %s s", mdEscape(shortName(s.name)), secs(s.seconds)))
	}
	if len(parts) == 0 {
		return "none over 0.05 s"
	}
	return strings.Join(parts, "; ")
}

// stepSpan is the time during which at least one step ran: the union of their intervals.
func stepSpan(steps []step) float64 {
	var iv []step
	for _, s := range steps {
		if !s.start.IsZero() && s.end.After(s.start) {
			iv = append(iv, s)
		}
	}
	sort.Slice(iv, func(i, j int) bool { return iv[i].start.Before(iv[j].start) })
	var total time.Duration
	var end time.Time
	for _, s := range iv {
		switch {
		case s.start.After(end):
			total += s.end.Sub(s.start)
			end = s.end
		case s.end.After(end):
			total += s.end.Sub(end)
			end = s.end
		}
	}
	return total.Seconds()
}

var mountFlag = regexp.MustCompile(`--mount=\S+\s*`)

// shortName drops the build file position envd appends and a Dockerfile's --mount flags, and shortens long names.
func shortName(name string) string {
	name = mountFlag.ReplaceAllString(name, "")
	if i := strings.LastIndex(name, " ["); i > 0 && strings.HasSuffix(name, "]") && strings.Contains(name[i:], ":") {
		name = name[:i]
	}
	if len(name) > 90 {
		name = name[:87] + "…"
	}
	return name
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

func (b *bench) reportMethod(md *strings.Builder) {
	md.WriteString("## How it was measured\n\n")
	md.WriteString("Each repetition runs, for each tool in turn, every scenario in order on one project directory, starting " +
		"from a cold start. The time is the wall time of the build command, until the image is in Docker. Before each " +
		"build the index's counters are zeroed; after the last scenario the image must import every package " +
		"(`docker run --rm IMAGE python -c 'import …'`, not timed).\n\n")
	md.WriteString("The scenarios' changes: `add-package` appends one requirement to the packages given by name; " +
		"`change-apt` replaces the apt package `file` with `less`; `edit-requirements` changes the pin in " +
		"`requirements.txt`; `switch-base` moves from `debian:bookworm` to `" + benchBase + "` (debian:bookworm plus one " +
		"small file, made by the benchmark and pushed to the mirror), so every step above the base runs again while " +
		"the pip caches stay; `second-project` builds another project (another directory and image name) beside the " +
		"first, with the first's initial packages but the last one, plus the added package: everything it needs was " +
		"downloaded before, and its layers new to Docker say how much of the first's it shares. The `envd-dev` column " +
		"builds the same file with `base(..., dev=True)`, the dev environment `envd up` runs (its user, the agent, " +
		"sudo, git and the shell); every other column builds the plain image. `team-cache` is a teammate's first build: " +
		"the initial project is built once more exporting its build cache to a registry of the run's own on 127.0.0.1 " +
		"(Debian's docker-registry; envd: `--force --export-cache type=registry,ref=REF`; docker build on BuildKit, " +
		"which has no buildx here: `--build-arg BUILDKIT_INLINE_CACHE=1` and `docker push`; not timed), then comes a " +
		"cold start (as above) and the timed build imports the cache (`--import-cache REF`; `--cache-from REF`). The " +
		"legacy builder has no such cache.\n\n")
	md.WriteString("Cold start: every image the benchmark made, with any tool, and the base images are removed from Docker " +
		"(`docker rmi -f`), so no tool finds an earlier build's layers there; then, per tool, the following. Before every build, " +
		"`sync` (not timed): a build does not pay for the writeback of the one before it (unmounting a step's overlay " +
		"flushes the whole disk, up to ~1 s here after a 600 MB build). Docker may still hold the base " +
		"image's layer through other images on the machine (`docker rmi` removes a layer only when no image uses it): " +
		"then docker build's `FROM` takes no time, while envd's builder, its state deleted, pulls and unpacks the base " +
		"(1–2 s here on a settled disk):\n\n")
	for _, t := range b.tools {
		fmt.Fprintf(md, "- %s: %s.\n", toolTitles[t.name()], t.resetText())
	}
	md.WriteString("\nCommands (`$BENCH` is the run's temporary directory; `$BENCH/bin/envd` is a copy of `bin/envd` " +
		"taken at the start, and its own buildkitd):\n\n```sh\n")
	for _, w := range b.works {
		for _, t := range b.tools {
			env, argv := t.command(filepath.Join(b.dir, "projects", t.name(), "bench-"+w.name), "envd-bench-"+w.name+":"+t.name(), w)
			fmt.Fprintf(md, "%s\n", strings.ReplaceAll(strings.Join(append(env, argv...), " "), b.dir, "$BENCH"))
		}
	}
	md.WriteString("```\n\n")
	md.WriteString("Notes:\n\n" +
		"- dockerd 20.10's built-in Dockerfile frontend accepts `RUN --mount=type=cache` and `--mount=type=secret` without " +
		"a `# syntax=` line (checked on this machine), so the BuildKit Dockerfile needs nothing from Docker Hub.\n" +
		"- The local index listens on Docker's bridge address, which envd's build steps (host network) and `docker build`'s " +
		"containers (bridge) both reach; the URL is the same in every build file.\n" +
		"- This network intercepts TLS. envd passes the host's CA bundle (`$PIP_CERT`) to its steps as a BuildKit secret; " +
		"the BuildKit Dockerfile mounts it as a secret too (`--secret id=pipcert,src=$PIP_CERT`); the legacy Dockerfile, " +
		"which has no secrets, copies it into an early layer. The synthetic index is plain HTTP and needs none.\n" +
		"- Steps cached: envd's count from `--metadata-file`; docker BuildKit's `CACHED` steps of `--progress plain`; " +
		"the legacy builder's `Using cache` lines.\n\n")
	for _, w := range b.works {
		fmt.Fprintf(md, "Build files of the first scenario, %s workload:\n\n", w.name)
		for _, t := range b.tools {
			files := t.files(w.initial, w)
			for _, name := range []string{"build.envd", "Dockerfile"} {
				if content, ok := files[name]; ok {
					fmt.Fprintf(md, "%s, `%s`:\n\n```%s\n%s```\n\n", toolTitles[t.name()], name, lang(name), content)
				}
			}
		}
		fmt.Fprintf(md, "`requirements.txt`: `%s`.\n\n", strings.Join(w.initial.requirements, " "))
	}
}

func lang(file string) string {
	if file == "Dockerfile" {
		return "dockerfile"
	}
	return "python"
}

func (b *bench) reportAll(md *strings.Builder) {
	md.WriteString("## Every build\n\n<details><summary>all repetitions</summary>\n\n")
	md.WriteString("| workload | tool | rep | scenario | seconds | MB downloaded | wheels (again) | steps cached | load (1 min) |\n")
	md.WriteString("|---|---|---:|---|---:|---:|---:|---|---:|\n")
	for _, r := range b.results {
		fmt.Fprintf(md, "| %s | %s | %d | %s | %s | %.1f | %d (%d) | %s | %.2f |\n", r.Workload, r.Tool, r.Rep, r.Scenario,
			secs(r.Seconds), mb(r.Bytes), r.Wheels, r.Redownloaded, r.stepsText(), r.Load1)
	}
	md.WriteString("\n</details>\n")
}
