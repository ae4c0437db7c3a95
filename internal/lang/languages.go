package lang

import (
	"strconv"

	"envd.dev/envd/internal/ir"
)

// RStudioPort is where config.rstudio_server listens in the container.
const RStudioPort = 8787

// rserver runs RStudio Server in the foreground for the supervisor, as the
// dev user, without a login page (ports are published on 127.0.0.1).
var rserver = []string{"/usr/lib/rstudio-server/bin/rserver", "--server-daemonize=0",
	"--www-port=" + strconv.Itoa(RStudioPort), "--auth-none=1", "--server-user=envd"}

// Each language is created by the first call that needs it: an installer,
// its packages or its mirror setting, so the order of calls does not matter.

func (c *call) conda() *ir.Conda {
	c.implyPython() // the conda environment holds the Python packages
	if c.s.env.Conda == nil {
		c.s.env.Conda = &ir.Conda{Pos: c.pos}
	}
	return c.s.env.Conda
}

func (c *call) r() *ir.R {
	if c.s.env.R == nil {
		c.s.env.R = &ir.R{Pos: c.pos}
	}
	return c.s.env.R
}

func (c *call) julia() *ir.Julia {
	if c.s.env.Julia == nil {
		c.s.env.Julia = &ir.Julia{Pos: c.pos}
	}
	return c.s.env.Julia
}

func installConda(c *call, a args) error {
	c.conda().UseMamba = a.boolean("use_mamba", false)
	return nil
}

func installCondaPackages(c *call, a args) error {
	conda := c.conda()
	conda.Packages = append(conda.Packages, packages(a.strs("name"), c.pos)...)
	conda.Channels = append(conda.Channels, a.strs("channel")...)
	if f := a.str("env_file", ""); f != "" {
		if conda.EnvFile != nil {
			return c.errorf("use one environment file, or list the packages with name=", "install.conda_packages: env_file already given at %s", conda.EnvFile.Pos)
		}
		conda.EnvFile = &ir.File{Path: f, Pos: c.pos}
	}
	return nil
}

// installUV puts uv in the venv; a python_version chooses the venv's Python.
func installUV(c *call, a args) error {
	if err := c.once(); err != nil {
		return err
	}
	c.s.env.UV = &ir.UV{Pos: c.pos}
	if v := a.str("python_version", ""); v != "" {
		return c.setPython(v)
	}
	c.implyPython()
	return nil
}

func installPixi(c *call, a args) error {
	if err := c.once(); err != nil {
		return err
	}
	c.s.env.Pixi = &ir.Pixi{UseMirror: a.boolean("use_pixi_mirror", false), PyPIIndex: a.str("pypi_index", ""), Pos: c.pos}
	return nil
}

func installR(c *call, _ args) error {
	c.r()
	return nil
}

func installRPackages(c *call, a args) error {
	r := c.r()
	r.Packages = append(r.Packages, packages(a.strs("name"), c.pos)...)
	return nil
}

func installJulia(c *call, _ args) error {
	c.julia()
	return nil
}

func installJuliaPackages(c *call, a args) error {
	j := c.julia()
	j.Packages = append(j.Packages, packages(a.strs("name"), c.pos)...)
	return nil
}

func configCondaChannel(c *call, a args) error {
	if err := c.once(); err != nil {
		return err
	}
	c.conda().Channel = a.str("channel", "")
	return nil
}

func configCRANMirror(c *call, a args) error {
	if err := c.once(); err != nil {
		return err
	}
	c.r().CRANMirror = a.str("url", "")
	return nil
}

func configJuliaPkgServer(c *call, a args) error {
	if err := c.once(); err != nil {
		return err
	}
	c.julia().PkgServer = a.str("url", "")
	return nil
}

// configRStudioServer installs RStudio Server and runs it in the
// environment, without a login: its port is published on 127.0.0.1.
func configRStudioServer(c *call, _ args) error {
	if err := c.once(); err != nil {
		return err
	}
	c.r().RStudio = true
	env := &c.s.env
	env.Expose = append(env.Expose, ir.Expose{EnvdPort: RStudioPort, Service: "rstudio", Pos: c.pos})
	env.Daemons = append(env.Daemons, ir.Daemon{Command: rserver, Pos: c.pos})
	return nil
}
