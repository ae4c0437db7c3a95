package compile

import (
	"fmt"
	"path"
	"strings"

	"github.com/moby/buildkit/client/llb"

	"envd.dev/envd/internal/ir"
)

const (
	micromambaVersion = "2.0.5-0"
	// CondaPkgsID is conda's package cache, shared by every environment like
	// pip's: packages are named by version and build, so sharing is safe.
	CondaPkgsID = "envd-conda-pkgs"
	// defaultCondarc uses conda-forge, whose terms allow any use.
	defaultCondarc = "channels:\n  - conda-forge\n"
)

func micromambaURL(p Platform) string {
	// conda's names of the platforms: linux-64, linux-aarch64.
	arch := map[Platform]string{LinuxAMD64: "64", LinuxARM64: "aarch64"}[p]
	return "https://github.com/mamba-org/micromamba-releases/releases/download/" + micromambaVersion + "/micromamba-linux-" + arch
}

// condaRuntime replaces the venv of pythonRuntime when the build file asks
// for conda: micromamba makes VenvDir a conda environment with Python, pip
// and the conda packages, so that pip packages (pythonPackages) and conda
// packages share one interpreter, as in envd v1.
func (c *compiler) condaRuntime(prep llb.State) llb.State {
	conda := c.env.Conda
	st := c.apt(prep, []string{"ca-certificates"}, "conda runtime", conda.Pos)
	condarc := conda.Channel
	if condarc == "" {
		condarc = defaultCondarc
	}
	mm := llb.HTTP(micromambaURL(c.opts.Platform), llb.Filename("micromamba"), llb.Chmod(0o755), llb.WithCustomName("download micromamba "+micromambaVersion))
	st = st.File(llb.Mkdir(condaRoot+"/bin", 0o755, llb.WithParents(true)).
		Copy(mm, "micromamba", condaRoot+"/bin/micromamba").
		Mkfile(condaRoot+"/.condarc", 0o644, []byte(strings.TrimRight(condarc, "\n")+"\n")),
		named("conda runtime: micromamba "+micromambaVersion))

	mamba := condaRoot + "/bin/micromamba"
	args := []string{mamba, "create", "-y", "-p", VenvDir, "--always-copy"}
	for _, ch := range conda.Channels {
		args = append(args, "-c", ch)
	}
	specs := append([]string{"python=" + c.condaPython(), "pip"}, sortedNames(conda.Packages)...)
	script := fmt.Sprintf("ln -sf micromamba %s/bin/conda\n%s", condaRoot, shellJoin(append(args, specs...)))
	opts := []llb.RunOption{
		llb.AddEnv("MAMBA_ROOT_PREFIX", condaRoot),
		// Packages are copied into the environment (--always-copy): hard
		// links into a cache mount would dangle in the image.
		llb.AddMount(condaRoot+"/pkgs", llb.Scratch(), llb.AsPersistentCacheDir(CondaPkgsID, llb.CacheMountLocked)),
	}
	what := specs
	if f := conda.EnvFile; f != nil {
		p := path.Clean(f.Path)
		dir := mountDir + "/conda"
		opts = append(opts, llb.AddMount(dir, c.context([]string{p}), llb.Readonly))
		script += "\n" + shellJoin([]string{mamba, "install", "-y", "-p", VenvDir, "--always-copy", "-f", dir + "/" + p})
		what = append(what, "-f "+p)
	}
	script += c.chownDirs(VenvDir)
	return c.script(st, fmt.Sprintf("conda runtime: micromamba create %s%s", strings.Join(what, " "), at(condaPos(conda))), script, opts...)
}

// condaPython is the Python version of the conda environment: the one asked
// for, else the distribution's, so the image's labels stay true.
func (c *compiler) condaPython() string {
	if py := c.env.Python; py != nil && py.Version != "" {
		return py.Version
	}
	if v := ir.DistroPython(c.env.Base.Image); v != "" {
		return v
	}
	return "3.11"
}

// condaPos is the line that named conda packages, else the first conda call.
func condaPos(conda *ir.Conda) ir.Pos {
	if len(conda.Packages) > 0 {
		return conda.Packages[0].Pos
	}
	if conda.EnvFile != nil {
		return conda.EnvFile.Pos
	}
	return conda.Pos
}
