package compile

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/moby/buildkit/client/llb"

	"envd.dev/envd/internal/ir"
)

// Pinned versions of what envd v1's API installs without a version.
const (
	juliaVersion = "1.10.7"
	pixiVersion  = "0.48.0"
)

// Download URLs, for the image's CPU.
func rustupURL(p Platform) string {
	return "https://static.rust-lang.org/rustup/dist/" + p.machine() + "-unknown-linux-gnu/rustup-init"
}
func goURL(p Platform, v string) string {
	return fmt.Sprintf("https://go.dev/dl/go%s.linux-%s.tar.gz", v, p.Arch)
}
func nodeURL(p Platform, v string) string {
	return fmt.Sprintf("https://nodejs.org/dist/v%[1]s/node-v%[1]s-linux-%[2]s.tar.gz", v, p.nodeArch())
}
func juliaURL(p Platform) string {
	minor := juliaVersion[:strings.LastIndex(juliaVersion, ".")]
	dir := map[Platform]string{LinuxAMD64: "x64", LinuxARM64: "aarch64"}[p]
	return fmt.Sprintf("https://julialang-s3.julialang.org/bin/linux/%s/%s/julia-%s-linux-%s.tar.gz", dir, minor, juliaVersion, p.machine())
}
func pixiURL(p Platform) string {
	return fmt.Sprintf("https://github.com/prefix-dev/pixi/releases/download/v%s/pixi-%s-unknown-linux-musl.tar.gz", pixiVersion, p.machine())
}

// codexAsset is the static build of OpenAI's Codex CLI for p in each
// release; the tarball holds this one file.
func codexAsset(p Platform) string { return "codex-" + p.machine() + "-unknown-linux-musl" }

func codexURL(p Platform, v string) string {
	return fmt.Sprintf("https://github.com/openai/codex/releases/download/rust-v%s/%s.tar.gz", v, codexAsset(p))
}

// unpack extracts a downloaded .tar.gz into dir; strip drops the archive's
// top directory.
func (c *compiler) unpack(st llb.State, name, url, dir string, strip int, owned bool) llb.State {
	script := fmt.Sprintf("mkdir -p %[1]s\ntar -xzf %[2]s/archive.tar.gz -C %[1]s --strip-components=%[3]d --no-same-owner",
		shellJoin([]string{dir}), downloadDir, strip)
	if owned {
		script += c.chownDirs(dir)
	}
	return c.script(st, name, script, download(url, "archive.tar.gz"))
}

func (c *compiler) golang(st llb.State) llb.State {
	t := c.env.Go
	return c.unpack(st, fmt.Sprintf("go %s%s", t.Version, at(t.Pos)), goURL(c.opts.Platform, t.Version), goRoot, 1, false)
}

// nodejs belongs to the user, so `npm install -g` works without sudo.
func (c *compiler) nodejs(st llb.State) llb.State {
	t := c.env.NodeJS
	return c.unpack(st, fmt.Sprintf("nodejs %s%s", t.Version, at(t.Pos)), nodeURL(c.opts.Platform, t.Version), nodeRoot, 1, true)
}

// codex installs the Codex CLI where the original envd put it. The version
// is only in the URL (validated, and BuildKit fetches it), never in the script.
func (c *compiler) codex(st llb.State) llb.State {
	t := c.env.Codex
	const tmp = "/tmp/envd-codex"
	script := fmt.Sprintf("mkdir -p %[1]s\ntar -xzf %[2]s/archive.tar.gz -C %[1]s --no-same-owner\nmv %[1]s/%[3]s %[4]s\nchmod 0755 %[4]s\nrm -rf %[1]s",
		tmp, downloadDir, codexAsset(c.opts.Platform), codexBin)
	return c.script(st, fmt.Sprintf("codex %s%s", t.Version, at(t.Pos)), script, download(codexURL(c.opts.Platform, t.Version), "archive.tar.gz"))
}

// rust installs with rustup into RUSTUP_HOME and CARGO_HOME (languageEnv).
func (c *compiler) rust(st llb.State) llb.State {
	t := c.env.Rust
	script := fmt.Sprintf("%s/rustup-init -y -q --no-modify-path --profile minimal --default-toolchain %s%s",
		downloadDir, shellJoin([]string{t.Version}), c.chownDirs("/opt/rust"))
	return c.script(st, fmt.Sprintf("rust %s: rustup%s", t.Version, at(t.Pos)), script, download(rustupURL(c.opts.Platform), "rustup-init"))
}

// julia installs the tarball, then the packages into the depot, which
// belongs to the user so that Pkg.add works in the environment.
func (c *compiler) julia(st llb.State) llb.State {
	j := c.env.Julia
	st = c.unpack(st, fmt.Sprintf("julia %s%s", juliaVersion, at(j.Pos)), juliaURL(c.opts.Platform), juliaRoot, 1, false)
	var names []string
	for _, n := range sortedNames(j.Packages) {
		names = append(names, strconv.Quote(strings.TrimSuffix(n, ".jl")))
	}
	script := "mkdir -p " + juliaDepot
	if len(names) > 0 {
		script += "\n" + shellJoin([]string{juliaRoot + "/bin/julia", "-e", "using Pkg; Pkg.add([" + strings.Join(names, ", ") + "])"})
	}
	script += c.chownDirs(juliaDepot)
	return c.script(st, fmt.Sprintf("julia packages: %s%s", strings.Join(sortedNames(j.Packages), " "), at(j.Pos)), script)
}

// uv goes into the venv with pip, through the shared pip cache.
func (c *compiler) uv(st llb.State) llb.State {
	script := shellJoin(c.pipCommand("uv")) + c.ownVenv()
	return c.script(st, "uv: pip install uv"+at(c.env.UV.Pos), script, c.pipCache())
}

// pixi is one binary; config.toml carries its mirror and PyPI index.
func (c *compiler) pixi(st llb.State) llb.State {
	p := c.env.Pixi
	st = c.unpack(st, fmt.Sprintf("pixi %s%s", pixiVersion, at(p.Pos)), pixiURL(c.opts.Platform), "/usr/local/bin", 0, false)
	if cfg := pixiConfig(p); cfg != "" {
		st = st.File(llb.Mkdir("/etc/pixi", 0o755, llb.WithParents(true)).Mkfile("/etc/pixi/config.toml", 0o644, []byte(cfg)),
			named("pixi: /etc/pixi/config.toml"))
	}
	return st
}

func pixiConfig(p *ir.Pixi) string {
	var b strings.Builder
	if p.UseMirror {
		b.WriteString("[mirrors]\n\"https://conda.anaconda.org\" = [\"https://prefix.dev/\"]\n")
	}
	if p.PyPIIndex != "" {
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "[pypi-config]\nindex-url = %s\n", strconv.Quote(p.PyPIIndex))
	}
	return b.String()
}

// sortedNames are package names, sorted and de-duplicated.
func sortedNames(pkgs []ir.Package) []string {
	var names []string
	for _, p := range pkgs {
		names = append(names, p.Name)
	}
	return dedupSorted(names)
}
