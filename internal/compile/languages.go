package compile

import (
	"fmt"
	"strings"

	"github.com/moby/buildkit/client/llb"

	"envd.dev/envd/internal/ir"
)

// languageSteps installs the rest of envd's v1 API: R, Julia, Rust, Go,
// Node.js, Codex, uv, pixi and io.http downloads (conda replaces the venv
// itself: condaRuntime). It runs after the dev user exists and before run() and
// io.copy() steps:
//
//	st ─▶ language packages (one apt step: r-base, ca-certificates, ...)
//	        ├─▶ R packages   ─┐
//	        ├─▶ Julia        ─┤ Diffs, joined with Merge: independent, built
//	        ├─▶ Rust, Go, …  ─┤ in parallel, and a change to one reruns only it
//	Merge ◀─────────────────┘
//	  ─▶ downloads (io.http), in order
func (c *compiler) languageSteps(st llb.State) llb.State {
	branches := c.languageBranches()
	if len(branches) == 0 && len(c.env.Downloads) == 0 {
		return st
	}
	st = st.AddEnv("PATH", withDirs(c.path(), c.languagePath()))
	for _, kv := range c.languageEnv() {
		st = st.AddEnv(kv[0], kv[1])
	}
	if pkgs := c.languageAptPackages(); len(pkgs) > 0 {
		st = c.apt(st, pkgs, "language packages", c.languagePos())
	}
	switch {
	case len(branches) == 1:
		st = branches[0](st) // nothing to run beside it
	case len(branches) > 1:
		layers := []llb.State{st}
		for _, b := range branches {
			layers = append(layers, llb.Diff(st, b(st)))
		}
		st = llb.Merge(layers, named("merge language stages"))
	}
	return c.downloads(st)
}

// branch builds one independent stage on top of the language packages.
type branch func(llb.State) llb.State

func (c *compiler) languageBranches() []branch {
	env := c.env
	var bs []branch
	if env.R != nil {
		bs = append(bs, c.rLang)
	}
	if env.Julia != nil {
		bs = append(bs, c.julia)
	}
	if env.Rust != nil {
		bs = append(bs, c.rust)
	}
	if env.Go != nil {
		bs = append(bs, c.golang)
	}
	if env.NodeJS != nil {
		bs = append(bs, c.nodejs)
	}
	if env.Codex != nil {
		bs = append(bs, c.codex)
	}
	if env.UV != nil && env.Python != nil {
		bs = append(bs, c.uv)
	}
	if env.Pixi != nil {
		bs = append(bs, c.pixi)
	}
	return bs
}

// languageAptPackages are what the language stages need from apt, less
// what the system packages step installed already.
func (c *compiler) languageAptPackages() []string {
	env := c.env
	var pkgs []string
	if env.R != nil {
		pkgs = append(pkgs, "r-base", "ca-certificates")
		if len(env.R.Packages) > 0 {
			pkgs = append(pkgs, "r-base-dev") // CRAN packages are built from source
		}
	}
	if env.Rust != nil {
		pkgs = append(pkgs, "ca-certificates", "gcc", "libc6-dev") // rustup downloads; cargo links with cc
	}
	if env.Go != nil || env.NodeJS != nil || env.Pixi != nil || env.Codex != nil {
		pkgs = append(pkgs, "ca-certificates") // for the modules, npm packages and conda packages they fetch, and Codex's API
	}
	have := map[string]bool{}
	for _, p := range c.systemPackages() {
		have[p] = true
	}
	var out []string
	for _, p := range dedupSorted(pkgs) {
		if !have[p] {
			out = append(out, p)
		}
	}
	return out
}

// languagePos is the first place that asked for a language, for step names.
func (c *compiler) languagePos() ir.Pos {
	env := c.env
	switch {
	case env.R != nil:
		return env.R.Pos
	case env.Julia != nil:
		return env.Julia.Pos
	case env.Rust != nil:
		return env.Rust.Pos
	case env.Go != nil:
		return env.Go.Pos
	case env.NodeJS != nil:
		return env.NodeJS.Pos
	case env.Codex != nil:
		return env.Codex.Pos
	case env.Pixi != nil:
		return env.Pixi.Pos
	}
	return ir.Pos{}
}

// Where the languages live in the image.
const (
	condaRoot   = "/opt/conda"
	rustupHome  = "/opt/rust/rustup"
	cargoHome   = "/opt/rust/cargo"
	goRoot      = "/usr/local/go"
	nodeRoot    = "/opt/nodejs"
	codexBin    = "/usr/bin/codex" // where the original envd installs it
	juliaRoot   = "/opt/julia"
	juliaDepot  = "/opt/julia/depot"
	downloadDir = "/tmp/envd-download" // a downloaded file, mounted into the step that uses it
)

// languagePath lists the bin directories of the installed languages, which
// go on PATH after the venv.
func (c *compiler) languagePath() []string {
	env := c.env
	var dirs []string
	if env.Conda != nil {
		dirs = append(dirs, condaRoot+"/bin")
	}
	if env.Rust != nil {
		dirs = append(dirs, cargoHome+"/bin")
	}
	if env.Go != nil {
		dirs = append(dirs, goRoot+"/bin")
	}
	if env.NodeJS != nil {
		dirs = append(dirs, nodeRoot+"/bin")
	}
	if env.Julia != nil {
		dirs = append(dirs, juliaRoot+"/bin")
	}
	return dirs
}

// languageEnv is the environment the languages need, in build steps and in
// the image, sorted by name.
func (c *compiler) languageEnv() [][2]string {
	env := c.env
	m := map[string]string{}
	if env.Conda != nil {
		m["MAMBA_ROOT_PREFIX"] = condaRoot
	}
	if env.Rust != nil {
		m["RUSTUP_HOME"], m["CARGO_HOME"] = rustupHome, cargoHome
	}
	if j := env.Julia; j != nil {
		m["JULIA_DEPOT_PATH"] = juliaDepot
		if j.PkgServer != "" {
			m["JULIA_PKG_SERVER"] = j.PkgServer
		}
	}
	return sortedEnv(m)
}

// withDirs puts dirs into a PATH value after its first entry (the venv, when
// there is one) unless they are there already.
func withDirs(path string, dirs []string) string {
	parts := strings.Split(path, ":")
	have := map[string]bool{}
	for _, p := range parts {
		have[p] = true
	}
	var add []string
	for _, d := range dirs {
		if !have[d] {
			add = append(add, d)
		}
	}
	if len(add) == 0 {
		return path
	}
	at := 0
	if len(parts) > 0 && parts[0] == VenvDir+"/bin" {
		at = 1
	}
	out := append(append(append([]string{}, parts[:at]...), add...), parts[at:]...)
	return strings.Join(out, ":")
}

// owner is who owns what envd installs for the user: config.owner, else
// the dev user (Options.DevUser); ok is false for images without a user of their own.
func (c *compiler) owner() (uid, gid int, ok bool) {
	if o := c.env.Owner; o != nil {
		return o.UID, o.GID, true
	}
	if c.env.Base.Dev {
		uid, gid := c.devIDs()
		return uid, gid, true
	}
	return 0, 0, false
}

// chownDirs returns a shell line giving dirs to the owner, or "".
func (c *compiler) chownDirs(dirs ...string) string {
	uid, gid, ok := c.owner()
	if !ok {
		return ""
	}
	return fmt.Sprintf("\nchown -R %d:%d %s", uid, gid, shellJoin(dirs))
}

// download is a file fetched by BuildKit, mounted at downloadDir/name in
// the step that uses it, so it never ends up in a layer.
func download(url, name string) llb.RunOption {
	src := llb.HTTP(url, llb.Filename(name), llb.Chmod(0o755), llb.WithCustomName("download "+url))
	return llb.AddMount(downloadDir, src, llb.Readonly)
}

// script runs a shell script as one step.
func (c *compiler) script(st llb.State, name, script string, opts ...llb.RunOption) llb.State {
	all := append([]llb.RunOption{llb.Args([]string{"/bin/sh", "-c", "set -e\n" + script}), named(name)}, c.trust()...)
	return st.Run(append(all, opts...)...).Root()
}
