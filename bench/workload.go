package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"envd.dev/envd/internal/testing/pyindex"
)

var workloadNames = []string{"synthetic", "synthetic-plain", "pypi"}

// spec is the environment one scenario builds.
type spec struct {
	base         string // a docker.io name, e.g. debian:bookworm
	apt          []string
	packages     []string // given by name in build.envd, or on the first pip line of a Dockerfile
	requirements []string // lines of requirements.txt
}

// A scenario changes the project the previous scenario left, and builds it.
type scenario struct {
	name, title string
	change      func(spec, *workload) spec // nil: build the project as it is
	// second builds workload.second in a second project (another directory
	// and image) beside the first, which stays as it was.
	second bool
	// team is a teammate's first build of the initial project, with the
	// team's cache in a registry (see bench.teamBuild).
	team bool
}

var scenarios = []scenario{
	{name: "cold", title: "cold (all caches cleared)"},
	{name: "noop", title: "no-op rebuild"},
	{name: "add-package", title: "add one Python package", change: func(s spec, w *workload) spec {
		s.packages = append(slices.Clone(s.packages), w.add)
		return s
	}},
	{name: "change-apt", title: "change one apt package", change: func(s spec, w *workload) spec {
		s.apt = slices.Clone(w.aptChanged)
		return s
	}},
	{name: "edit-requirements", title: "edit requirements.txt", change: func(s spec, w *workload) spec {
		s.requirements = slices.Clone(w.requirementsEdited)
		return s
	}},
	{name: "switch-base", title: "switch the base image tag", change: func(s spec, w *workload) spec {
		s.base = benchBase
		return s
	}},
	{name: "second-project", title: "a second project sharing most packages", second: true},
	{name: "team-cache", title: "another machine, with the team cache", team: true},
}

func scenarioNames() []string {
	var names []string
	for _, s := range scenarios {
		names = append(names, s.name)
	}
	return names
}

func scenarioTitle(name string) string {
	for _, s := range scenarios {
		if s.name == name {
			return s.title
		}
	}
	return name
}

// workload is a set of packages, the changes the scenarios make to it, and where the packages come from.
type workload struct {
	name, title        string
	about              string // for the report
	reps               int
	initial            spec
	add                string // the package add-package adds
	aptChanged         []string
	requirementsEdited []string
	imports            []string         // modules the final image must import
	addImport          string           // the module of add, which only add-package brings
	second             spec             // the second project: the initial packages but the last, and add
	secondImports      []string         // modules the second project's image must import
	pypi               bool             // packages come from PyPI
	index              *pyindex.Server  // the local index, nil for PyPI
	indexURL           string           // "" for PyPI
	wheels             map[string]int64 // local index: wheel file -> size
	cacheNote          string           // PyPI: whether pip can cache what this network serves
	plain              bool             // the local index serves no metadata files (pyindex.WithoutMetadata)
}

// wheelSpec is a generated wheel.
type wheelSpec struct {
	name, version string
	size          int
	requires      []string
}

const mib = 1 << 20

// The synthetic workload: six wheels of 5–300 MiB (634 MB) as in issue 5, a 1 MiB one to add, and a 1 MiB
// requirement whose pin is edited.
var (
	syntheticWheels = []wheelSpec{
		{"bench-a", "1.0", 300 * mib, nil}, {"bench-b", "1.0", 150 * mib, nil}, {"bench-c", "1.0", 80 * mib, nil},
		{"bench-d", "1.0", 50 * mib, nil}, {"bench-e", "1.0", 20 * mib, nil}, {"bench-f", "1.0", 5 * mib, nil},
	}
	syntheticExtra = []wheelSpec{
		{"bench-add", "1.0", 1 * mib, nil}, {"bench-req", "1.0", 1 * mib, nil}, {"bench-req", "1.1", 1 * mib, nil},
	}
	// The smoke test's: tiny, with a dependency to resolve.
	tinyWheels = []wheelSpec{
		{"alpha", "1.0", 64 << 10, []string{"gamma"}}, {"beta", "1.0", 64 << 10, nil}, {"gamma", "1.0", 64 << 10, nil},
	}
	tinyExtra = []wheelSpec{
		{"delta", "1.0", 64 << 10, nil}, {"req-pkg", "1.0", 64 << 10, nil}, {"req-pkg", "1.1", 64 << 10, nil},
	}
)

func newWorkload(name string, b *bench) (*workload, error) {
	w := &workload{name: name, reps: b.o.reps}
	w.initial = spec{base: "debian:bookworm", apt: []string{"file"}}
	w.aptChanged = []string{"less"}
	switch name {
	case "pypi":
		w.title = "real packages from PyPI"
		w.pypi = true
		w.initial.packages = []string{"numpy==2.1.3", "pandas==2.2.3", "scikit-learn==1.5.2"}
		w.initial.requirements = []string{"packaging==24.1"}
		w.add = "tqdm==4.67.1"
		w.requirementsEdited = []string{"packaging==24.2"}
		w.imports, w.addImport = []string{"numpy", "pandas", "sklearn", "packaging"}, "tqdm"
		w.setSecond("sklearn")
		w.cacheNote = pypiCacheNote()
		w.about = "numpy 2.1.3, pandas 2.2.3 and scikit-learn 1.5.2 with their dependencies (scipy, …; about 80 MB of " +
			"wheels) from pypi.org through this network's TLS-intercepting proxy; add-package adds tqdm, " +
			"edit-requirements moves packaging 24.1 → 24.2. The network varies: compare tools within this table only. " +
			w.cacheNote
		return w, nil
	case "synthetic":
		w.title = "synthetic: 634 MB of wheels from a local index at " + fmt.Sprint(b.o.throttleMbit) + " Mbit/s"
		w.reps = b.o.syntheticReps
		return w, w.serve(b, syntheticWheels, syntheticExtra, b.o.throttleMbit*1e6/8)
	case "synthetic-plain":
		w.title = "synthetic, from a plain index (no PEP 658 metadata, no Range) at " + fmt.Sprint(b.o.throttleMbit) + " Mbit/s"
		w.reps, w.plain = b.o.syntheticReps, true
		return w, w.serve(b, syntheticWheels, syntheticExtra, b.o.throttleMbit*1e6/8)
	case "tiny":
		w.title = "tiny wheels from a local index (smoke)"
		return w, w.serve(b, tinyWheels, tinyExtra, 0)
	case "tiny-plain":
		w.title = "tiny wheels from a plain local index: no PEP 658 metadata, no Range (smoke)"
		w.plain = true
		return w, w.serve(b, tinyWheels, tinyExtra, 0)
	}
	return nil, fmt.Errorf("unknown workload %q", name)
}

// setSecond makes the second project: the initial spec without its last
// package (whose module is dropImport) and with add.
func (w *workload) setSecond(dropImport string) {
	w.second = w.initial
	pkgs := w.initial.packages
	w.second.packages = append(slices.Clone(pkgs[:len(pkgs)-1]), w.add)
	for _, m := range w.imports {
		if m != dropImport {
			w.secondImports = append(w.secondImports, m)
		}
	}
	w.secondImports = append(w.secondImports, w.addImport)
}

// serve generates the wheels and starts a package index for them, on Docker's bridge so that containers of
// `docker build` reach it as well as envd's build steps (which share the host's network).
func (w *workload) serve(b *bench, main, extra []wheelSpec, bytesPerSecond int64) error {
	dir := filepath.Join(b.dir, "wheels-"+w.name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	w.wheels = map[string]int64{}
	for _, ws := range append(slices.Clone(main), extra...) {
		p, err := pyindex.MakeWheel(dir, ws.name, ws.version, pyindex.WheelOptions{PadBytes: ws.size, Requires: ws.requires})
		if err != nil {
			return err
		}
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		w.wheels[filepath.Base(p)] = fi.Size()
	}
	for _, ws := range main {
		w.initial.packages = append(w.initial.packages, ws.name+"=="+ws.version)
		w.imports = append(w.imports, pyindex.ImportName(ws.name))
	}
	add, req, edited := extra[0], extra[1], extra[2]
	w.add = add.name + "==" + add.version
	w.initial.requirements = []string{req.name + "==" + req.version}
	w.requirementsEdited = []string{edited.name + "==" + edited.version}
	w.imports, w.addImport = append(w.imports, pyindex.ImportName(req.name)), pyindex.ImportName(add.name)
	w.setSecond(pyindex.ImportName(main[len(main)-1].name))

	if err := pyindex.AddToolWheels(dir); err != nil {
		return err
	}
	addr, err := bridgeAddr(b.o.tools)
	if err != nil {
		return err
	}
	opts := []pyindex.Option{pyindex.WithAddr(addr + ":0")}
	if bytesPerSecond > 0 {
		opts = append(opts, pyindex.WithThrottle(bytesPerSecond))
	}
	if w.plain {
		opts = append(opts, pyindex.WithoutMetadata())
	}
	srv, err := pyindex.New(dir, opts...)
	if err != nil {
		return err
	}
	b.onCleanup(func() error { srv.Close(); return nil })
	w.index, w.indexURL = srv, srv.URL()

	var total int64
	for _, ws := range main {
		total += w.wheels[pyindex.WheelFileName(ws.name, ws.version)]
	}
	w.about = fmt.Sprintf("%d generated wheels (incompressible, %s) totalling %.1f MB, plus %s (added by add-package) "+
		"and %s (requirements.txt, edited to %s), served by `internal/testing/pyindex` on %s",
		len(main), sizesText(main), mb(total), w.add, w.initial.requirements[0], w.requirementsEdited[0], srv.Addr())
	if bytesPerSecond > 0 {
		w.about += fmt.Sprintf(", throttled to %d Mbit/s for all downloads together", bytesPerSecond*8/1e6)
	}
	w.about += "; bytes are counted by the index."
	return nil
}

func sizesText(ws []wheelSpec) string {
	var parts []string
	for _, w := range ws {
		if w.size >= mib {
			parts = append(parts, fmt.Sprintf("%d", w.size/mib))
		} else {
			parts = append(parts, fmt.Sprintf("%.2f", float64(w.size)/mib))
		}
	}
	return strings.Join(parts, ", ") + " MiB"
}

// bridgeAddr is the host's address on Docker's default bridge; envd alone can use loopback.
func bridgeAddr(tools []string) (string, error) {
	if ifc, err := net.InterfaceByName("docker0"); err == nil {
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
				return n.IP.String(), nil
			}
		}
	}
	if slices.ContainsFunc(tools, func(t string) bool { return strings.HasPrefix(t, "docker-") }) {
		return "", errors.New("no IPv4 address on docker0: docker build's containers could not reach the package index")
	}
	return "127.0.0.1", nil
}

func (w *workload) resetCounters() {
	if w.index != nil {
		w.index.Reset()
	}
}

// account fills in what the build downloaded: from the index's counters, or for PyPI from pip's "Downloading"
// lines. seen holds the wheels downloaded since the cold start; downloading one again counts as a re-download.
func (w *workload) account(r *result, seen map[string]bool) {
	files := map[string]int{}
	if w.index != nil {
		files = w.index.DownloadCounts()
		r.Bytes = w.index.BytesServed()
	} else {
		for _, d := range pipDownloads(r.text) {
			files[d.file]++
			r.Bytes += d.bytes
		}
	}
	r.Files = files
	for f, n := range files {
		r.Wheels += n
		if seen[f] {
			r.Redownloaded += n
		} else {
			r.Redownloaded += n - 1
		}
		seen[f] = true
	}
}

// pypiWheel is a file on PyPI's file server, asked for its headers only.
const pypiWheel = "https://files.pythonhosted.org/packages/d0/30/dc54f88dd4a2b5dc8a0279bdd7270e735851848b762aeb1c1184ed1f6b14/tqdm-4.67.1-py3-none-any.whl"

// pypiCacheNote says whether pip's HTTP cache can keep PyPI's files here: it keeps a response only when its
// headers allow it (PyPI sends Cache-Control: max-age=365000000), and a proxy may strip them.
func pypiCacheNote() string {
	resp, err := http.Head(pypiWheel)
	if err != nil {
		return fmt.Sprintf("(Could not check PyPI's caching headers: %v.)", err)
	}
	resp.Body.Close()
	if cc := resp.Header.Get("Cache-Control"); cc != "" {
		return fmt.Sprintf("PyPI's files arrive here with `Cache-Control: %s`, so pip's HTTP cache keeps them.", cc)
	}
	return "PyPI's files arrive here without `Cache-Control`, `ETag` or `Last-Modified` (the proxy strips them; checked " +
		"with a HEAD request at the start of the run), so pip's HTTP cache keeps none of them: every pip run that needs " +
		"a wheel downloads it again, cache mount or not."
}

// pipFlags are the index flags every pip command gets.
func pipFlags(w *workload) string {
	if w.indexURL == "" {
		return ""
	}
	u, _ := url.Parse(w.indexURL)
	return fmt.Sprintf(" --index-url %s --trusted-host %s", w.indexURL, u.Hostname())
}

func pyList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = fmt.Sprintf("%q", x)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func requirementsFile(s spec) string { return strings.Join(s.requirements, "\n") + "\n" }

func envdFile(s spec, w *workload, dev bool) string {
	var b strings.Builder
	b.WriteString("def build():\n")
	if dev {
		fmt.Fprintf(&b, "    base(image=%q, dev=True)\n", s.base)
	} else {
		fmt.Fprintf(&b, "    base(image=%q)\n", s.base)
	}
	if w.indexURL != "" {
		fmt.Fprintf(&b, "    config.pip_index(url=%q, trust=True)\n", w.indexURL)
	}
	fmt.Fprintf(&b, "    install.apt_packages(name=%s)\n", pyList(s.apt))
	fmt.Fprintf(&b, "    install.python_packages(name=%s, requirements=\"requirements.txt\")\n", pyList(s.packages))
	return b.String()
}

const (
	venvEnv   = "ENV VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
	aptGet    = "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends"
	aptMounts = "--mount=type=cache,target=/var/cache/apt,sharing=locked --mount=type=cache,target=/var/lib/apt,sharing=locked"
)

// legacyDockerfile is what a careful engineer writes without BuildKit: the same steps in cache-friendly order,
// no pip cache in the layers. Both Dockerfiles upgrade the venv's pip first, as most do: Debian 12's pip 23.0.1
// downloads every wheel twice from an index that serves PEP 658 metadata (PyPI, and the synthetic index), a pip
// bug fixed in 23.1 that is no fault of Docker's. With a CA bundle (TLS-intercepting network) it is copied into an
// early layer.
func legacyDockerfile(s spec, w *workload, mirror string, ca bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "FROM %s\n", dockerBase(mirror, s.base))
	if ca {
		b.WriteString("COPY ca.pem /usr/local/share/bench-ca.pem\nENV PIP_CERT=/usr/local/share/bench-ca.pem\n")
	}
	fmt.Fprintf(&b, "RUN %s python3 python3-venv \\\n && rm -rf /var/lib/apt/lists/* && python3 -m venv /opt/venv\n", aptGet)
	b.WriteString(venvEnv)
	pip := "pip install --no-cache-dir --disable-pip-version-check" + pipFlags(w)
	fmt.Fprintf(&b, "RUN %s --upgrade pip\n", pip)
	fmt.Fprintf(&b, "RUN %s %s \\\n && rm -rf /var/lib/apt/lists/*\n", aptGet, strings.Join(s.apt, " "))
	fmt.Fprintf(&b, "RUN %s %s\n", pip, strings.Join(s.packages, " "))
	b.WriteString("COPY requirements.txt /tmp/requirements.txt\n")
	fmt.Fprintf(&b, "RUN %s -r /tmp/requirements.txt\n", pip)
	return b.String()
}

// buildkitDockerfile is the best a careful engineer writes for BuildKit: apt and pip cache mounts (apt told to
// keep its downloads), the CA bundle as a secret, and the same cache-friendly order. dockerd 20.10's built-in
// Dockerfile frontend accepts RUN --mount without a `# syntax=` line.
func buildkitDockerfile(s spec, w *workload, mirror string, ca bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "FROM %s\n", dockerBase(mirror, s.base))
	b.WriteString("RUN rm -f /etc/apt/apt.conf.d/docker-clean \\\n" +
		" && echo 'Binary::apt::APT::Keep-Downloaded-Packages \"true\";' > /etc/apt/apt.conf.d/keep-cache\n")
	fmt.Fprintf(&b, "RUN %s \\\n    %s python3 python3-venv \\\n && python3 -m venv /opt/venv\n", aptMounts, aptGet)
	b.WriteString(venvEnv)
	mounts, pip := "--mount=type=cache,target=/root/.cache/pip", "pip install --disable-pip-version-check"+pipFlags(w)
	if ca {
		mounts += " --mount=type=secret,id=pipcert"
		pip = "PIP_CERT=/run/secrets/pipcert " + pip
	}
	fmt.Fprintf(&b, "RUN %s \\\n    %s --upgrade pip\n", mounts, pip)
	fmt.Fprintf(&b, "RUN %s \\\n    %s %s\n", aptMounts, aptGet, strings.Join(s.apt, " "))
	fmt.Fprintf(&b, "RUN %s \\\n    %s %s\n", mounts, pip, strings.Join(s.packages, " "))
	b.WriteString("COPY requirements.txt /tmp/requirements.txt\n")
	fmt.Fprintf(&b, "RUN %s \\\n    %s -r /tmp/requirements.txt\n", mounts, pip)
	return b.String()
}
