// Package ir holds an environment as plain data: what build.envd asked for,
// with the position of each request so later stages can still cite a line.
// It knows nothing of Starlark or BuildKit.
package ir

import (
	"fmt"
	"sort"
)

// Pos is a place in a build file. The zero Pos means "no position".
type Pos struct {
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
	Col  int    `json:"col,omitempty"`
}

func (p Pos) String() string {
	switch {
	case p.File == "":
		return "<unknown>"
	case p.Line == 0:
		return p.File
	case p.Col == 0:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// Environment is everything one build function declared.
type Environment struct {
	Base Base `json:"base"`
	// Python is nil when the environment has no Python.
	Python *Python `json:"python,omitempty"`

	AptSource      *AptSource `json:"apt_source,omitempty"`
	AptPackages    []Package  `json:"apt_packages,omitempty"`
	PipIndex       *PipIndex  `json:"pip_index,omitempty"`
	PythonPackages []Package  `json:"python_packages,omitempty"`
	// PipOptions are the pip options given in install.python_packages
	// entries; nil when none were.
	PipOptions *PipOptions `json:"pip_options,omitempty"`
	// Requirements and LocalWheels are paths relative to the build context.
	Requirements []File `json:"requirements,omitempty"`
	LocalWheels  []File `json:"local_wheels,omitempty"`

	// Steps run after every package is installed, in the order declared.
	Steps []Step `json:"steps,omitempty"`

	Environ   map[string]string `json:"environ,omitempty"`
	ExtraPath []string          `json:"extra_path,omitempty"`

	// Recorded for the runtime and for later build stages.
	Shell            string      `json:"shell,omitempty"`
	CUDA             *CUDA       `json:"cuda,omitempty"`
	VSCodeExtensions []Package   `json:"vscode_extensions,omitempty"`
	Jupyter          *Jupyter    `json:"jupyter,omitempty"`
	GitConfig        *GitConfig  `json:"git_config,omitempty"`
	Expose           []Expose    `json:"expose,omitempty"`
	Daemons          []Daemon    `json:"daemons,omitempty"`
	Init             []Daemon    `json:"init,omitempty"`
	Mounts           []Mount     `json:"mounts,omitempty"`
	Calls            []OtherCall `json:"calls,omitempty"`

	// The rest of envd's v1 API: other languages and toolchains (OpenAI's
	// Codex CLI is recorded as one), downloads, image and container settings
	// (languages.go).
	Conda      *Conda            `json:"conda,omitempty"`
	UV         *UV               `json:"uv,omitempty"`
	Pixi       *Pixi             `json:"pixi,omitempty"`
	R          *R                `json:"r,omitempty"`
	Julia      *Julia            `json:"julia,omitempty"`
	Rust       *Toolchain        `json:"rust,omitempty"`
	Go         *Toolchain        `json:"go,omitempty"`
	NodeJS     *Toolchain        `json:"nodejs,omitempty"`
	Codex      *Toolchain        `json:"codex,omitempty"`
	Downloads  []Download        `json:"downloads,omitempty"`
	Entrypoint *Entrypoint       `json:"entrypoint,omitempty"`
	Repo       *Repo             `json:"repo,omitempty"`
	Owner      *Owner            `json:"owner,omitempty"`
	Resources  *Resources        `json:"resources,omitempty"`
	Commands   map[string]string `json:"commands,omitempty"`
}

// Base is the image everything is built on.
type Base struct {
	// Image is a full reference, e.g. "docker.io/library/debian:bookworm".
	Image string `json:"image"`
	// OS is the article's os= form as written ("ubuntu20.04"); empty for image=.
	OS string `json:"os,omitempty"`
	// Language as written ("python", "python3.11"); empty when not given.
	Language string `json:"language,omitempty"`
	// Dev images get the agent, a user, a shell: what `envd up` needs.
	Dev bool `json:"dev"`
	// Implicit: the build function never calls base(); Pos is the function.
	Implicit bool `json:"implicit,omitempty"`
	Pos      Pos  `json:"pos"`
}

// Python is the interpreter the venv is created from.
type Python struct {
	// Version is "3.11" or "" for the distribution's python3.
	Version string `json:"version,omitempty"`
	Pos     Pos    `json:"pos"`
}

// Package is one name given by the user: an apt package, a pip requirement,
// an editor extension.
type Package struct {
	Name string `json:"name"`
	Pos  Pos    `json:"pos"`
}

// File is a path relative to the build context.
type File struct {
	Path string `json:"path"`
	Pos  Pos    `json:"pos"`
}

type PipIndex struct {
	URL      string `json:"url"`
	ExtraURL string `json:"extra_url,omitempty"`
	Trust    bool   `json:"trust,omitempty"`
	Pos      Pos    `json:"pos"`
}

// PipOptions are pip options written in install.python_packages entries, as
// envd v1 handed them to pip ("torch --index-url URL", "--pre"). envd
// resolves the packages of every call together, so these are the options of
// that one resolve, merged from the calls by lang (docs/build-file.md says how).
type PipOptions struct {
	// IndexURL replaces config.pip_index's URL (or PyPI) for the packages.
	IndexURL       string   `json:"index_url,omitempty"`
	ExtraIndexURLs []string `json:"extra_index_urls,omitempty"`
	FindLinks      []string `json:"find_links,omitempty"`
	TrustedHosts   []string `json:"trusted_hosts,omitempty"`
	Pre            bool     `json:"pre,omitempty"`
	NoDeps         bool     `json:"no_deps,omitempty"`
	// Pos is the first entry that gave an option.
	Pos Pos `json:"pos"`
}

// AptSource replaces /etc/apt/sources.list with Source.
type AptSource struct {
	Source string `json:"source"`
	Pos    Pos    `json:"pos"`
}

// Step is a run() or io.copy(); exactly one of Run and Copy is set.
type Step struct {
	Run  *RunStep  `json:"run,omitempty"`
	Copy *CopyStep `json:"copy,omitempty"`
	Pos  Pos       `json:"pos"`
}

// RunStep runs each command with sh -c, in order, in one build step.
type RunStep struct {
	Commands []string `json:"commands"`
	// MountHost mounts the build context at the working directory.
	MountHost bool `json:"mount_host,omitempty"`
}

// CopyStep copies Source to Target: from the build context (Source is
// relative to it) or, when Image is set, from that image (Source is an
// absolute path in it), like Dockerfile's COPY --from.
type CopyStep struct {
	Source string `json:"source"`
	Target string `json:"target"`
	// Image is a full reference, e.g. "docker.io/mambaorg/micromamba:1.0.0".
	Image string `json:"image,omitempty"`
}

type CUDA struct {
	Version string `json:"version"`
	CUDNN   string `json:"cudnn,omitempty"`
	Pos     Pos    `json:"pos"`
}

type Jupyter struct {
	// Token is a secret: never serialised, so it is in no image label and
	// not in Digest (it changes nothing in the image; `envd up` passes it).
	Token string `json:"-"`
	// Port is where Jupyter is published on this machine, as in the
	// original envd; 0 picks a free port. Inside it is contract.JupyterPort.
	Port int `json:"port"`
	Pos  Pos `json:"pos"`
}

type GitConfig struct {
	Name   string `json:"name,omitempty"`
	Email  string `json:"email,omitempty"`
	Editor string `json:"editor,omitempty"`
	Pos    Pos    `json:"pos"`
}

// Expose publishes EnvdPort of the container on HostPort (0: pick a free one).
type Expose struct {
	EnvdPort   int    `json:"envd_port"`
	HostPort   int    `json:"host_port,omitempty"`
	Service    string `json:"service,omitempty"`
	ListenAddr string `json:"listen_addr,omitempty"`
	Pos        Pos    `json:"pos"`
}

// Daemon is one argv, started by the agent's supervisor.
type Daemon struct {
	Command []string `json:"command"`
	Pos     Pos      `json:"pos"`
}

type Mount struct {
	HostPath string `json:"host_path"`
	EnvdPath string `json:"envd_path"`
	Pos      Pos    `json:"pos"`
}

// OtherCall records a builtin the build stages do not model yet, so that no
// call is dropped without a trace. Args are the keyword arguments as JSON values.
type OtherCall struct {
	Name string         `json:"name"`
	Args map[string]any `json:"args,omitempty"`
	Pos  Pos            `json:"pos"`
}

// AptNames returns the apt package names, sorted and de-duplicated, so the
// order in build.envd does not change the build.
func (e *Environment) AptNames() []string { return sortedNames(e.AptPackages) }

// PythonNames returns the pip requirements, sorted and de-duplicated.
func (e *Environment) PythonNames() []string { return sortedNames(e.PythonPackages) }

func sortedNames(pkgs []Package) []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range pkgs {
		if !seen[p.Name] {
			seen[p.Name] = true
			out = append(out, p.Name)
		}
	}
	sort.Strings(out)
	return out
}
