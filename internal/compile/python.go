package compile

import (
	"fmt"
	"math"
	"net/url"
	"path"
	"slices"
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
	if c.env.Conda != nil {
		return c.condaRuntime(prep)
	}
	py := c.env.Python
	if c.distroPython() {
		st := c.apt(prep, []string{"python3", "python3-venv"}, "python runtime", py.Pos)
		script := "python3 -m venv " + VenvDir
		if c.venvWithoutPip() {
			script += " --without-pip"
		}
		if c.env.Base.Dev {
			script += fmt.Sprintf(" && chown -R %s %s", c.opts.DevUser, VenvDir)
		}
		return st.Run(
			llb.Args([]string{"/bin/sh", "-c", script}),
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
	own := ""
	if c.env.Base.Dev {
		own = fmt.Sprintf(" && chown -R %s %s", c.opts.DevUser, VenvDir)
	}
	return st.Run(append(c.trust(),
		llb.Args([]string{"/bin/sh", "-c", fmt.Sprintf("%[1]s/bin/uv python install %[2]s && %[1]s/bin/uv venv --seed --python %[2]s %[3]s%[4]s", uvToolDir, py.Version, VenvDir, own)}),
		llb.AddEnv("UV_PYTHON_INSTALL_DIR", uvPythonDir),
		llb.AddEnv("UV_CACHE_DIR", "/root/.cache/uv"),
		llb.AddMount("/root/.cache/uv", llb.Scratch(), llb.AsPersistentCacheDir(uvCacheID, llb.CacheMountShared)),
		named(fmt.Sprintf("python runtime: python %s%s", py.Version, at(py.Pos))),
	)...).Root()
}

// venvWithoutPip says the venv is created bare and pip comes in a layer of
// its own (pipLayer): with uv from the host nothing needs pip before the
// packages, and ensurepip (about 3 s) then runs beside them.
func (c *compiler) venvWithoutPip() bool {
	return c.opts.HostUV != "" && c.env.Conda == nil && c.distroPython()
}

// distroPython says the python asked for is the base distribution's.
func (c *compiler) distroPython() bool {
	v, distro := c.env.Python.Version, ir.DistroPython(c.env.Base.Image)
	return v == "" || v == distro || (distro != "" && strings.HasPrefix(v, distro+"."))
}

// pipLayer puts the distribution's pip into the bare venv, for the user.
func (c *compiler) pipLayer(runtime llb.State) layer {
	script := VenvDir + "/bin/python -m ensurepip --default-pip" + c.ownVenv()
	// It changes only with the runtime, so it goes lowest: a package that
	// changes later then does not make Docker take pip's layer again.
	return layer{key: "python:pip (ensurepip)", size: math.MaxInt64, st: runtime.Run(
		llb.Args([]string{"/bin/sh", "-c", script}),
		named("python runtime: pip for "+VenvDir),
	).Root()}
}

func (c *compiler) pipCache() llb.RunOption {
	return llb.AddMount(pipCacheTarget, llb.Scratch(), llb.AsPersistentCacheDir(PipCacheID, llb.CacheMountShared))
}

// pipSet is what the user asked pip for: names, requirements files and
// local wheels, with the mounts that make the files visible to a step.
type pipSet struct {
	args   []string // pip install arguments naming the set
	mounts []llb.RunOption
	what   []string // for step names
	pos    ir.Pos
}

// pipSet collects the environment's Python packages; false when there are none.
func (c *compiler) pipSet() (pipSet, bool) {
	env := c.env
	var set pipSet
	names := env.PythonNames()
	if env.Jupyter != nil {
		names = dedupSorted(append(names, "jupyterlab"))
	}
	if len(names) == 0 && len(env.Requirements) == 0 && len(env.LocalWheels) == 0 {
		return set, false
	}
	if len(names) > 0 {
		set.args = append(set.args, names...)
		set.what = append(set.what, names...)
		if len(env.PythonPackages) > 0 {
			set.pos = env.PythonPackages[0].Pos
		} else {
			set.pos = env.Jupyter.Pos
		}
	}
	// Each file is mounted from the build context on its own, so only a
	// change to its content reruns the step.
	for i, f := range env.Requirements {
		dir := fmt.Sprintf("%s/requirements%d", mountDir, i)
		p := path.Clean(f.Path)
		set.mounts = append(set.mounts, llb.AddMount(dir, c.context([]string{p}), llb.Readonly))
		set.args = append(set.args, "-r", dir+"/"+p)
		set.what = append(set.what, "-r "+p)
		if set.pos.File == "" {
			set.pos = f.Pos
		}
	}
	if len(env.LocalWheels) > 0 {
		set.mounts = append(set.mounts, c.wheelsMount())
		for _, f := range env.LocalWheels {
			p := path.Clean(f.Path)
			set.args = append(set.args, wheelsDir+"/"+p)
			set.what = append(set.what, p)
		}
		if set.pos.File == "" {
			set.pos = env.LocalWheels[0].Pos
		}
	}
	// Step names show the options as the user wrote them (pip's flags).
	set.what = append(set.what, c.optionWords()...)
	return set, true
}

const wheelsDir = mountDir + "/wheels"

// wheelsMount makes the local wheels visible at wheelsDir.
func (c *compiler) wheelsMount() llb.RunOption {
	var paths []string
	for _, f := range c.env.LocalWheels {
		paths = append(paths, path.Clean(f.Path))
	}
	return llb.AddMount(wheelsDir, c.context(paths), llb.Readonly)
}

// pipCommand is `python -m pip install` with config.pip_index's flags, for tools.
func (c *compiler) pipCommand(extra ...string) []string {
	args := []string{VenvDir + "/bin/python", "-m", "pip", "install", "--disable-pip-version-check"}
	args = append(args, c.pipIndexArgs()...)
	return append(args, extra...)
}

// pipPackageCommand is pipCommand for a step that resolves or installs the
// packages: the entries' options apply too.
func (c *compiler) pipPackageCommand(resolve bool, extra ...string) []string {
	args := []string{VenvDir + "/bin/python", "-m", "pip", "install", "--disable-pip-version-check"}
	idx := c.index(true)
	args = append(args, idx.pipArgs()...)
	args = append(args, c.optionArgs(pipFlags, idx, resolve)...)
	return append(args, extra...)
}

// ownVenv hands what a step installed to the dev user, who then installs
// packages without sudo. Only files not yet theirs are touched, so the
// step's layer holds nothing but its own files.
func (c *compiler) ownVenv() string {
	if !c.env.Base.Dev {
		return ""
	}
	uid, _ := c.devIDs()
	return fmt.Sprintf(" && find %s ! -user %d -exec chown -h %s {} +", VenvDir, uid, c.opts.DevUser)
}

// pythonPackages returns the branches that install the Python packages on
// top of the runtime: one per resolved distribution when the set was
// resolved (so adding a package installs that package alone), else one
// pip run for the whole set.
func (c *compiler) pythonPackages(runtime llb.State) []layer {
	set, ok := c.pipSet()
	if !ok {
		return nil
	}
	if c.opts.Lock == nil {
		if c.venvWithoutPip() {
			runtime = c.pipLayer(runtime).st
		}
		script := shellJoin(c.pipPackageCommand(true, set.args...)) + c.ownVenv()
		opts := append(c.trust(), c.pipCache(), llb.Args([]string{"/bin/sh", "-c", script}),
			named(fmt.Sprintf("python packages: pip install %s%s", strings.Join(set.what, " "), at(set.pos))))
		return []layer{{key: "python:" + strings.Join(set.what, " "), st: runtime.Run(append(opts, set.mounts...)...).Root()}}
	}
	var branches []layer
	for _, group := range groupDistributions(c.opts.Lock, c.maxPackageLayers()) {
		var urls, names []string
		local, size := false, int64(0)
		for _, d := range group {
			urls = append(urls, d.installArg())
			names = append(names, d.Name+" "+d.Version)
			local = local || strings.HasPrefix(d.URL, "file:")
			size += d.Size
		}
		key := "python:" + strings.Join(urls, " ")
		script := c.installScript(group) + c.ownVenv()
		opts := append(c.trust(), c.installMounts(runtime)...)
		opts = append(opts, llb.Args([]string{"/bin/sh", "-c", script}),
			named(fmt.Sprintf("python packages: install %s%s", strings.Join(names, ", "), at(set.pos))))
		// Only a layer installing a local wheel reads them: changing a wheel
		// reinstalls that layer alone.
		if local && len(c.env.LocalWheels) > 0 {
			opts = append(opts, c.wheelsMount())
		}
		branches = append(branches, layer{key, runtime.Run(opts...).Root(), size})
	}
	return branches
}

func (c *compiler) maxPackageLayers() int {
	if c.opts.MaxPackageLayers > 0 {
		return c.opts.MaxPackageLayers
	}
	return DefaultMaxPackageLayers
}

// pipIndexArgs turns config.pip_index into pip flags: for the tools (pip,
// uv), which come from the environment's index whatever the entries say.
func (c *compiler) pipIndexArgs() []string { return c.index(false).pipArgs() }

// trustedHosts are the host names of the given index URLs, once each.
func trustedHosts(urls ...string) []string {
	var hosts []string
	for _, u := range urls {
		if pu, err := url.Parse(u); err == nil && pu.Hostname() != "" && !slices.Contains(hosts, pu.Hostname()) {
			hosts = append(hosts, pu.Hostname())
		}
	}
	return hosts
}

// lines is the set as a requirements file: "-r FILE" stays one line.
func (s pipSet) lines() []string {
	var lines []string
	for i := 0; i < len(s.args); i++ {
		if s.args[i] == "-r" && i+1 < len(s.args) {
			lines = append(lines, "-r "+s.args[i+1])
			i++
			continue
		}
		lines = append(lines, s.args[i])
	}
	return lines
}
