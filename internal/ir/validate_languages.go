package ir

import (
	"net/url"
	"path"
	"regexp"
	"strings"
)

var (
	// condaSpec is a name with optional version and build constraints
	// ("pytorch", "numpy>=1.26,<2", "python=3.11=*_cpython", "conda-forge::rich").
	condaSpec    = regexp.MustCompile(`^([A-Za-z0-9_.\-]+::)?[A-Za-z0-9_][A-Za-z0-9_.\-]*((==|>=|<=|!=|~=|=|<|>)[A-Za-z0-9_.*+!\-]+)*(,(==|>=|<=|!=|~=|<|>)[A-Za-z0-9_.*+!\-]+)*$`)
	condaChannel = regexp.MustCompile(`^[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*$`)
	rPackage     = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9.]*$`)
	juliaPackage = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.jl)?$`)
	rustVersion  = regexp.MustCompile(`^(stable|beta|nightly(-[0-9]{4}-[0-9]{2}-[0-9]{2})?|[0-9]+\.[0-9]+(\.[0-9]+)?)$`)
	goVersion    = regexp.MustCompile(`^[0-9]+\.[0-9]+(\.[0-9]+|rc[0-9]+|beta[0-9]+)?$`)
	nodeVersion  = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+$`)
	// codexVersion is a release of github.com/openai/codex without its tag's
	// "rust-v" prefix, pre-releases too ("0.98.0", "0.46.0-alpha.1").
	codexVersion = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z]+(\.[0-9A-Za-z]+)*)?$`)
	sha256Digest = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	// A command's name is any one line (the original envd has "go version").
	commandName = regexp.MustCompile(`^[^\n\r]*\S[^\n\r]*$`)
)

// validateLanguages checks the rest of envd's v1 API. Names end up as
// arguments of installers, so they are checked as strictly as pip's.
func (e *Environment) validateLanguages() []error {
	var errs []error
	add := func(err *Error) { errs = append(errs, err) }
	names := func(pkgs []Package, re *regexp.Regexp, what, hint string) {
		for _, p := range pkgs {
			if !re.MatchString(p.Name) {
				add(Errorf(p.Pos, hint, "invalid %s %q", what, p.Name))
			}
		}
	}
	if c := e.Conda; c != nil {
		names(c.Packages, condaSpec, "conda package", `give a name with an optional version, e.g. "pytorch" or "numpy>=1.26"`)
		for _, ch := range c.Channels {
			if !condaChannel.MatchString(ch) && !isHTTPURL(ch) {
				add(Errorf(c.Pos, `use a channel name such as "conda-forge" or an https URL`, "invalid conda channel %q", ch))
			}
		}
		if f := c.EnvFile; f != nil {
			if err := checkContextPath(f.Path); err != "" {
				add(Errorf(f.Pos, "use a path inside the build directory, relative to it", "conda env file %q %s", f.Path, err))
			}
		}
	}
	if p := e.Pixi; p != nil && p.PyPIIndex != "" && !isHTTPURL(p.PyPIIndex) {
		add(Errorf(p.Pos, `e.g. "https://pypi.org/simple"`, "pypi_index %q is not an http(s) URL", p.PyPIIndex))
	}
	if r := e.R; r != nil {
		names(r.Packages, rPackage, "R package", `R package names are letters, digits and dots, e.g. "ggplot2"`)
		if r.RStudio && !e.Base.Dev {
			add(Errorf(r.Pos, "RStudio Server runs as the dev user: use base(os=...), or pass dev=True to base() (add base(dev=True) when there is none)", "config.rstudio_server needs a dev environment"))
		}
		if r.CRANMirror != "" && !isHTTPURL(r.CRANMirror) {
			add(Errorf(r.Pos, `e.g. "https://cloud.r-project.org"`, "CRAN mirror %q is not an http(s) URL", r.CRANMirror))
		}
	}
	if j := e.Julia; j != nil {
		names(j.Packages, juliaPackage, "Julia package", `Julia package names are identifiers, e.g. "Flux" or "DataFrames"`)
		if j.PkgServer != "" && !isHTTPURL(j.PkgServer) {
			add(Errorf(j.Pos, `e.g. "https://pkg.julialang.org"`, "Julia package server %q is not an http(s) URL", j.PkgServer))
		}
	}
	for _, t := range []struct {
		tc       *Toolchain
		re       *regexp.Regexp
		what, eg string
	}{{e.Rust, rustVersion, "Rust", `"stable" or "1.82.0"`}, {e.Go, goVersion, "Go", `"1.25.3"`}, {e.NodeJS, nodeVersion, "Node.js", `"22.11.0"`},
		{e.Codex, codexVersion, "Codex", `"0.98.0": the number of a release of github.com/openai/codex, without its tag's "rust-v"; leave version out for envd's pinned one`}} {
		if t.tc != nil && !t.re.MatchString(t.tc.Version) {
			add(Errorf(t.tc.Pos, "write it as "+t.eg, "%q is not a %s version", t.tc.Version, t.what))
		}
	}
	for _, d := range e.Downloads {
		errs = append(errs, d.validate()...)
	}
	if ep := e.Entrypoint; ep != nil {
		switch {
		case e.Base.Dev:
			add(Errorf(ep.Pos, "use runtime.daemon or runtime.init to start processes in a dev environment, or base(image=..., dev=False)",
				"config.entrypoint applies to images without dev: a dev environment's entrypoint is envd's agent"))
		case len(ep.Args) == 0 || ep.Args[0] == "":
			add(Errorf(ep.Pos, `e.g. config.entrypoint(["python3", "serve.py"])`, "entrypoint is empty"))
		}
	}
	if r := e.Repo; r != nil && !isHTTPURL(r.URL) {
		add(Errorf(r.Pos, `e.g. "https://github.com/team/project"`, "repo URL %q is not an http(s) URL", r.URL))
	}
	for name, cmd := range e.Commands {
		if !commandName.MatchString(name) || strings.TrimSpace(cmd) == "" {
			add(Errorf(Pos{}, `e.g. runtime.command(commands={"train": "python train.py"})`, "invalid command %q: %q", name, cmd))
		}
	}
	return errs
}

func (d Download) validate() []error {
	var errs []error
	if !isHTTPURL(d.URL) {
		errs = append(errs, Errorf(d.Pos, `e.g. io.http(url="https://example.com/data.tar.gz")`, "%q is not an http(s) URL", d.URL))
	}
	if d.Checksum != "" && !sha256Digest.MatchString(d.Checksum) {
		errs = append(errs, Errorf(d.Pos, `write it as "sha256:" and 64 hex digits (sha256sum FILE prints them)`, "invalid checksum %q", d.Checksum))
	}
	if name := d.Name(); name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
		errs = append(errs, Errorf(d.Pos, `give filename="data.tar.gz"`, "cannot name the file downloaded from %q", d.URL))
	}
	return errs
}

// Name is the file name the download gets in DownloadDir.
func (d Download) Name() string {
	if d.Filename != "" {
		return d.Filename
	}
	u, err := url.Parse(d.URL)
	if err != nil {
		return ""
	}
	return path.Base(u.Path)
}

func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
