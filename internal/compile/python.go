package compile

import (
	"fmt"
	"net/url"
	"path"
	"strings"

	"github.com/moby/buildkit/client/llb"

	"envd.dev/envd/internal/ir"
)

const (
	uvToolDir      = "/opt/envd/uv"
	uvPythonDir    = "/opt/envd/python"
	uvCacheID      = "envd-uv-cache"
	pipCacheTarget = "/root/.cache/pip"
)

// pythonRuntime installs an interpreter and creates the venv every Python
// package goes into (Debian 12 marks its system python externally managed).
func (c *compiler) pythonRuntime(prep llb.State) llb.State {
	py := c.env.Python
	distro := ir.DistroPython(c.env.Base.Image)
	if py.Version == "" || py.Version == distro || (distro != "" && strings.HasPrefix(py.Version, distro+".")) {
		st := c.apt(prep, []string{"python3", "python3-venv"}, "python runtime", py.Pos)
		return st.Run(
			llb.Args([]string{"python3", "-m", "venv", VenvDir}),
			named("python runtime: create venv "+VenvDir),
		).Root()
	}
	// Another version than the distribution's: uv fetches a standalone
	// CPython build. This needs its download site to be reachable.
	st := c.apt(prep, []string{"python3", "python3-venv", "ca-certificates"}, "python runtime", py.Pos)
	st = st.Run(append(c.trust(),
		llb.Args([]string{"/bin/sh", "-c", fmt.Sprintf("python3 -m venv %[1]s && %[1]s/bin/pip install %[2]s uv", uvToolDir, shellJoin(c.pipIndexArgs()))}),
		c.pipCache(),
		named("python runtime: install uv"),
	)...).Root()
	return st.Run(append(c.trust(),
		llb.Args([]string{"/bin/sh", "-c", fmt.Sprintf("%[1]s/bin/uv python install %[2]s && %[1]s/bin/uv venv --seed --python %[2]s %[3]s", uvToolDir, py.Version, VenvDir)}),
		llb.AddEnv("UV_PYTHON_INSTALL_DIR", uvPythonDir),
		llb.AddEnv("UV_CACHE_DIR", "/root/.cache/uv"),
		llb.AddMount("/root/.cache/uv", llb.Scratch(), llb.AsPersistentCacheDir(uvCacheID, llb.CacheMountShared)),
		named(fmt.Sprintf("python runtime: python %s%s", py.Version, at(py.Pos))),
	)...).Root()
}

func (c *compiler) pipCache() llb.RunOption {
	return llb.AddMount(pipCacheTarget, llb.Scratch(), llb.AsPersistentCacheDir(PipCacheID, llb.CacheMountShared))
}

// pythonPackages installs names, requirements files and local wheels in one
// pip run, so pip resolves them together as one consistent set.
func (c *compiler) pythonPackages(runtime llb.State) (llb.State, bool) {
	env := c.env
	names := env.PythonNames()
	if env.Jupyter != nil {
		names = dedupSorted(append(names, "jupyterlab"))
	}
	if len(names) == 0 && len(env.Requirements) == 0 && len(env.LocalWheels) == 0 {
		return llb.State{}, false
	}
	args := append([]string{VenvDir + "/bin/python", "-m", "pip", "install", "--disable-pip-version-check"}, c.pipIndexArgs()...)
	opts := append(c.trust(), c.pipCache())
	var what []string
	var pos ir.Pos
	if len(names) > 0 {
		args = append(args, names...)
		what = append(what, names...)
		if len(env.PythonPackages) > 0 {
			pos = env.PythonPackages[0].Pos
		} else {
			pos = env.Jupyter.Pos
		}
	}
	// Each file is mounted from the build context on its own, so only a
	// change to its content reruns the step.
	for i, f := range env.Requirements {
		dir := fmt.Sprintf("%s/requirements%d", mountDir, i)
		p := path.Clean(f.Path)
		opts = append(opts, llb.AddMount(dir, c.context([]string{p}), llb.Readonly))
		args = append(args, "-r", dir+"/"+p)
		what = append(what, "-r "+p)
		if pos.File == "" {
			pos = f.Pos
		}
	}
	if len(env.LocalWheels) > 0 {
		var paths []string
		for _, f := range env.LocalWheels {
			paths = append(paths, path.Clean(f.Path))
		}
		dir := mountDir + "/wheels"
		opts = append(opts, llb.AddMount(dir, c.context(paths), llb.Readonly))
		for _, p := range paths {
			args = append(args, dir+"/"+p)
			what = append(what, p)
		}
		if pos.File == "" {
			pos = env.LocalWheels[0].Pos
		}
	}
	opts = append(opts, llb.Args(args), named(fmt.Sprintf("python packages: pip install %s%s", strings.Join(what, " "), at(pos))))
	return runtime.Run(opts...).Root(), true
}

// pipIndexArgs turns config.pip_index into pip flags.
func (c *compiler) pipIndexArgs() []string {
	idx := c.env.PipIndex
	if idx == nil {
		return nil
	}
	var args []string
	if idx.URL != "" {
		args = append(args, "--index-url", idx.URL)
	}
	if idx.ExtraURL != "" {
		args = append(args, "--extra-index-url", idx.ExtraURL)
	}
	if idx.Trust {
		seen := map[string]bool{}
		for _, u := range []string{idx.URL, idx.ExtraURL} {
			if pu, err := url.Parse(u); err == nil && pu.Hostname() != "" && !seen[pu.Hostname()] {
				seen[pu.Hostname()] = true
				args = append(args, "--trusted-host", pu.Hostname())
			}
		}
	}
	return args
}
