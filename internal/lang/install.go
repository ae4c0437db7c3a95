package lang

import (
	"regexp"

	"envd.dev/envd/internal/ir"
)

var cudaVersion = regexp.MustCompile(`^[0-9]+(\.[0-9]+){0,2}$`)

// installModule is install.*: what goes into the image. Parameter names and
// defaults follow envd's v1 API (the toolchains' default versions too).
// The handlers of the other languages are in languages.go.
var installModule = newModule("install", "What goes into the image.",
	member{name: "python", h: installPython, doc: "A Python venv at /opt/envd/venv, first on PATH: the distribution's python3 when the version matches it, otherwise a standalone CPython fetched by uv.", params: []string{
		`version?:str="3.11"  # e.g. "3.11" or "3.11.9"`,
	}},
	member{name: "apt_packages", h: installApt, doc: "Install apt packages.", params: []string{
		`name?:strs=[]  # package names, optionally name=version`,
	}},
	member{name: "system_packages", h: installApt, doc: "install.apt_packages under envd v0's name.", params: []string{
		`name?:strs=[]`,
	}},
	member{name: "python_packages", h: installPythonPackages, doc: "Install Python packages into the venv (implies install.python()). They are resolved together, then each installs in a layer of its own, with uv (fetched from the package index) or pip when the index has no uv. " +
		"Entries may carry pip options, as envd v1 handed them to pip: " + pipOptionsAccepted + "; they apply to the one resolve of every call (docs/build-file.md).", params: []string{
		`name?:strs=[]  # requirements such as "numpy" or "torch>=2.1", and pip options such as "torch --index-url URL"`,
		`requirements?:str=""  # a requirements file in the build directory`,
		`local_wheels?:strs=[]  # wheel files in the build directory`,
	}},
	member{name: "cuda", h: installCUDA, doc: "Build on the nvidia/cuda devel image of the same Ubuntu release.", params: []string{
		`version:str  # e.g. "11.6" or "12.4.1"`,
		`cudnn?:str|none="8"  # cuDNN major version; None for none`,
	}},
	member{name: "vscode_extensions", h: installVSCode, doc: "VS Code extensions for the editor attached with envd up.", params: []string{
		`name:strs  # extension ids, e.g. "ms-python.python"`,
	}},
	member{name: "conda", h: installConda, doc: "Make the Python environment a conda environment (micromamba, conda-forge), so conda and pip packages share it.", params: []string{
		`use_mamba?:bool=False  # kept for envd v1 files: envd always uses micromamba, also as conda`,
	}},
	member{name: "conda_packages", h: installCondaPackages, doc: "Install conda packages into the environment (implies install.conda()).", params: []string{
		`name?:strs=[]  # e.g. "pytorch" or "numpy>=1.26"`,
		`channel?:strs=[]  # extra channels for these packages, e.g. "pytorch"`,
		`env_file?:str=""  # an environment.yml in the build directory; name= and channel= may come with it, which the original envd refused`,
	}},
	member{name: "uv", h: installUV, doc: "Install uv into the venv (its cache is shared by every build); install.python_packages keeps working beside it, where the original envd left packages to uv.", params: []string{
		`python_version?:str  # the venv's Python version; default: the environment's (install.python's, else the distribution's python3), where the original envd's was "3.11"`,
	}},
	member{name: "pixi", h: installPixi, doc: "Install pixi; run `pixi install` or `pixi shell` in the environment. install.python_packages keeps working beside it, where the original envd left packages to pixi.", params: []string{
		`use_pixi_mirror?:bool=False  # fetch conda packages through prefix.dev`,
		`pypi_index?:str|none=None  # the PyPI index pixi uses`,
	}},
	member{name: "r_lang", h: installR, doc: "Install R (the distribution's r-base)."},
	member{name: "r_packages", h: installRPackages, doc: "Install R packages from CRAN (implies install.r_lang()).", params: []string{
		`name:strs  # e.g. "ggplot2"`,
	}},
	member{name: "julia", h: installJulia, doc: "Install Julia from the official tarball into /opt/julia."},
	member{name: "julia_packages", h: installJuliaPackages, doc: "Install Julia packages (implies install.julia()).", params: []string{
		`name:strs  # e.g. "Flux"`,
	}},
	member{name: "rust", h: toolchain(func(e *ir.Environment) **ir.Toolchain { return &e.Rust }), doc: "Install a Rust toolchain with rustup into /opt/rust.", params: []string{
		`version?:str="stable"  # the toolchain: stable, beta, nightly or e.g. "1.82.0"; None is stable. The original envd's version was rustup's own (RUSTUP_VERSION), its toolchain always stable`,
	}},
	member{name: "go", h: toolchain(func(e *ir.Environment) **ir.Toolchain { return &e.Go }), doc: "Install Go from the official tarball into /usr/local/go.", params: []string{
		`version?:str="1.25.3"  # None is this default, the original envd's`,
	}},
	member{name: "nodejs", h: toolchain(func(e *ir.Environment) **ir.Toolchain { return &e.NodeJS }), doc: "Install Node.js from the official tarball into /opt/nodejs.", params: []string{
		`version?:str="25.1.0"  # None is this default, the original envd's`,
	}},
	// The original envd asks GitHub for the latest release when version is
	// None; envd pins one, so that a build does not change by itself.
	member{name: "codex", h: toolchain(func(e *ir.Environment) **ir.Toolchain { return &e.Codex }), doc: "Install OpenAI's Codex CLI as /usr/bin/codex: the static binary of its GitHub release (no Node.js needed).", params: []string{
		`version?:str="0.98.0"  # a release of github.com/openai/codex, e.g. "0.98.0"; None means this pinned one (the original envd took the latest release)`,
	}},
)

// installPython asks for a Python version; envd v1's default is 3.11.
func installPython(c *call, a args) error {
	return c.setPython(a.str("version", ""))
}

func installApt(c *call, a args) error {
	c.s.env.AptPackages = append(c.s.env.AptPackages, packages(a.strs("name"), c.pos)...)
	return nil
}

func packages(names []string, pos ir.Pos) []ir.Package {
	var out []ir.Package
	for _, n := range names {
		out = append(out, ir.Package{Name: n, Pos: pos})
	}
	return out
}

func installPythonPackages(c *call, a args) error {
	c.implyPython()
	env := &c.s.env
	names := a.strs("name")
	pkgs, opts, err := pipEntries(names, c.itemPositions("name", 0, len(names)))
	if err != nil {
		return err
	}
	env.PythonPackages = append(env.PythonPackages, pkgs...)
	r, wheels := a.str("requirements", ""), a.strs("local_wheels")
	if r != "" {
		env.Requirements = append(env.Requirements, ir.File{Path: r, Pos: c.pos})
	}
	for _, w := range wheels {
		env.LocalWheels = append(env.LocalWheels, ir.File{Path: w, Pos: c.pos})
	}
	opts.installs = len(pkgs) > 0 || r != "" || len(wheels) > 0
	opts.call = c.pos
	c.s.pipCalls = append(c.s.pipCalls, opts)
	return nil
}

func installCUDA(c *call, a args) error {
	if err := c.once(); err != nil {
		return err
	}
	version := a.str("version", "")
	if !cudaVersion.MatchString(version) {
		return c.errorf(`write it as install.cuda(version="11.6") or "12.4.1"`, "install.cuda: %q is not a CUDA version", version)
	}
	c.s.env.CUDA = &ir.CUDA{Version: version, CUDNN: a.str("cudnn", ""), Pos: c.pos}
	return nil
}

func installVSCode(c *call, a args) error {
	c.s.env.VSCodeExtensions = append(c.s.env.VSCodeExtensions, packages(a.strs("name"), c.pos)...)
	return nil
}

// toolchain records install.rust, install.go, install.nodejs or
// install.codex, once each.
func toolchain(field func(*ir.Environment) **ir.Toolchain) handler {
	return func(c *call, a args) error {
		if err := c.once(); err != nil {
			return err
		}
		*field(&c.s.env) = &ir.Toolchain{Version: a.str("version", ""), Pos: c.pos}
		return nil
	}
}
