package compile

import (
	"fmt"
	"path"
	"strings"

	"github.com/moby/buildkit/client/llb"

	"envd.dev/envd/internal/ir"
)

// Installers of Python packages, as Options.Installer names them.
const (
	InstallerPip = "pip"
	InstallerUV  = "uv"
)

// UVVersion is the uv envd resolves and installs Python packages with. It
// comes from the environment's package index, like the packages.
const UVVersion = "0.13.9"

// LocalUV names the session directory holding uv when Options.HostUV is
// set; the binary is HostUV/bin/uv in it.
const LocalUV = "envd-uv"

const (
	uvToolMount   = "/opt/envd/uv-tool"
	uvBinary      = uvToolMount + "/bin/uv"
	uvCacheTarget = "/root/.cache/uv"
)

// uvTool mounts uv, read-only, into a step without making it part of the
// image: the host's copy when the session offers one, else one fetched
// from the package index by the venv's pip (a cached step); when the index
// has no uv the mount is empty and the steps fall back to pip.
func (c *compiler) uvTool(runtime llb.State) llb.RunOption {
	if dir := c.opts.HostUV; dir != "" {
		src := c.local(LocalUV, llb.FollowPaths([]string{path.Join(dir, "bin/uv")}), llb.SharedKeyHint(LocalUV),
			llb.WithCustomName("python packages: uv "+UVVersion+" from the host"))
		return llb.AddMount(uvToolMount, src, llb.SourcePath(dir), llb.Readonly)
	}
	out := "/envd-uv"
	fetch := shellJoin(c.pipCommand("--quiet", "--no-deps", "--only-binary=:all:", "--target", out, "uv=="+UVVersion))
	script := fmt.Sprintf("%s || echo 'envd: uv %s is not on the package index; Python packages are resolved and installed with pip'", fetch, UVVersion)
	tool := runtime.Run(append(c.trust(), c.pipCache(),
		llb.Args([]string{"/bin/sh", "-c", script}),
		named("python packages: fetch uv "+UVVersion),
	)...).AddMount(out, llb.Scratch())
	return llb.AddMount(uvToolMount, tool, llb.Readonly)
}

// UsesUV says a build of env resolves and installs Python packages, which
// it does with uv when it can get it.
func UsesUV(env *ir.Environment) bool { return (&compiler{env: env}).installer() != "" }

func (c *compiler) uvCache() llb.RunOption {
	return llb.AddMount(uvCacheTarget, llb.Scratch(), llb.AsPersistentCacheDir(uvCacheID, llb.CacheMountShared))
}

// uvIndexEnv lets uv see an index the image configures for pip through the
// environment (uv reads neither PIP_* variables nor pip.conf).
const uvIndexEnv = `[ -z "${PIP_INDEX_URL:-}" ] || export UV_INDEX_URL="$PIP_INDEX_URL"; ` +
	`[ -z "${PIP_EXTRA_INDEX_URL:-}" ] || export UV_EXTRA_INDEX_URL="$PIP_EXTRA_INDEX_URL"; `

// On an index without PEP 658 metadata uv fetches whole wheels to resolve
// and fetches them again to install. envd then stands its caching proxy
// (package indexproxy) in front of config.pip_index's URLs for the build,
// and hands its URLs to uv's steps as these secrets, in these variables: a
// secret is no part of a step's cache key, so the step is the same with the
// proxy or without it (a builder that cannot reach the proxy gets none,
// and uv asks the index itself).
const (
	IndexProxySecret      = "envd-index-proxy"
	ExtraIndexProxySecret = "envd-extra-index-proxy"
	indexProxyEnv         = "ENVD_INDEX_PROXY"
	extraIndexProxyEnv    = "ENVD_EXTRA_INDEX_PROXY"
)

// uvCommand is uv with the index flags of a step that resolves or
// installs the packages, as shell words. The index strategy is pip's: the
// best version across every index, not the first index that has the name.
// config.pip_index's URLs are the proxy's when the step has one.
func (c *compiler) uvCommand(resolve bool, args ...string) string {
	cmd := append([]string{uvBinary}, args...)
	cmd = append(cmd, "--cache-dir", uvCacheTarget, "--index-strategy", "unsafe-best-match")
	line := shellJoin(cmd)
	idx := c.index(true)
	switch {
	case idx.proxied:
		line += " --index-url " + orEnv(indexProxyEnv, idx.url)
	case idx.url != "":
		line += " " + shellJoin([]string{"--index-url", idx.url})
	}
	if idx.extra != "" {
		line += " --extra-index-url " + orEnv(extraIndexProxyEnv, idx.extra)
	}
	for _, h := range idx.trusted {
		line += " " + shellJoin([]string{uvFlags.trust, h})
	}
	if opts := c.optionArgs(uvFlags, idx, resolve); len(opts) > 0 {
		line += " " + shellJoin(opts)
	}
	return line
}

// orEnv is the shell word for $env, or value when it is unset or empty.
func orEnv(env, value string) string {
	return `"${` + env + `:-` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "`", "\\`", `$`, `\$`, `}`, `\}`).Replace(value) + `}"`
}

// uvIndexProxy gives a uv step the proxy's URLs, when the build has them.
func (c *compiler) uvIndexProxy() []llb.RunOption {
	if c.env.PipIndex == nil {
		return nil
	}
	return []llb.RunOption{
		llb.AddSecretWithDest(IndexProxySecret, nil, llb.SecretAsEnvName(indexProxyEnv), llb.SecretOptional),
		llb.AddSecretWithDest(ExtraIndexProxySecret, nil, llb.SecretAsEnvName(extraIndexProxyEnv), llb.SecretOptional),
	}
}

// installScript installs the group, and nothing it depends on, into the
// venv with the installer that resolved it. uv gets requirements pinned by
// version and hash rather than URLs: it finds the file through the index's
// metadata, where a bare URL would be fetched twice (once for its metadata).
// It copies out of its cache (another mount, so no hard links) and compiles
// bytecode, as pip does.
func (c *compiler) installScript(group []Distribution) string {
	if c.opts.Installer != InstallerUV {
		var files []string
		for _, d := range group {
			files = append(files, d.installArg())
		}
		return shellJoin(c.pipPackageCommand(false, append([]string{"--no-deps"}, files...)...))
	}
	var lines []string
	for _, d := range group {
		lines = append(lines, d.requirementLine())
	}
	install := c.uvCommand(false, "pip", "install", "--python", VenvDir+"/bin/python", "--no-deps",
		"--link-mode", "copy", "--compile-bytecode", "-r", "-")
	return fmt.Sprintf("%sprintf '%%s\\n' %s | %s", uvIndexEnv, shellJoin(lines), install)
}

// installMounts are what an install step needs besides the runtime.
func (c *compiler) installMounts(runtime llb.State) []llb.RunOption {
	if c.opts.Installer == InstallerUV {
		return append([]llb.RunOption{c.uvCache(), c.uvTool(runtime)}, c.uvIndexProxy()...)
	}
	return []llb.RunOption{c.pipCache()}
}

// installer names the tool that installs the Python packages.
func (c *compiler) installer() string {
	if _, ok := c.pipSet(); !ok || c.env.Python == nil {
		return ""
	}
	if c.opts.Lock != nil && c.opts.Installer != "" {
		return c.opts.Installer
	}
	return InstallerPip
}
