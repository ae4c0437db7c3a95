package lang

import "envd.dev/envd/internal/ir"

// configModule is config.*: settings of the environment.
var configModule = newModule("config", "Settings of the environment, its image and its container.",
	member{name: "pip_index", h: configPipIndex, doc: "The package index Python packages come from (pip and uv).", params: []string{
		`url:str  # e.g. "https://pypi.org/simple"`,
		`extra_url?:str=""  # a second index, searched too`,
		`trust?:bool=False  # trust the hosts even without valid TLS (pip --trusted-host, uv --allow-insecure-host)`,
	}},
	member{name: "apt_source", h: configAptSource, doc: "Replace /etc/apt/sources.list (and remove deb822 *.sources files).", params: []string{
		`source:str  # the content of a sources.list`,
	}},
	// Early envd called the token "password".
	member{name: "jupyter", h: configJupyter, doc: "Serve JupyterLab from the environment (installs jupyterlab; implies Python).", params: []string{
		`token|password?:str=""  # "" lets envd up choose one; Jupyter always has a token`,
		`port?:int=0  # the port on this machine (the original envd's meaning); 0 picks a free one`,
	}},
	member{name: "conda_channel", h: configCondaChannel, doc: "Configure conda's channels (implies install.conda(), which the original envd required first).", params: []string{
		`channel:str  # the content of a .condarc`,
	}},
	member{name: "gpu", h: configGPU, doc: "GPUs the container gets from envd up.", params: []string{
		`count:int  # a number of GPUs, or -1 for all`,
	}},
	member{name: "shm_size", h: configShmSize, doc: "Size of the container's /dev/shm (PyTorch's data loaders need more than Docker's 64 MB).", params: []string{
		`size:int  # megabytes`,
	}},
	member{name: "cran_mirror", h: configCRANMirror, doc: "The CRAN mirror R packages come from (implies install.r_lang(); the original envd installed R only with install.r_lang()).", params: []string{
		`url:str  # default https://cran.rstudio.com`,
	}},
	member{name: "julia_pkg_server", h: configJuliaPkgServer, doc: "The Julia package server (JULIA_PKG_SERVER; implies install.julia(); the original envd installed Julia only with install.julia()).", params: []string{
		`url:str  # default https://pkg.julialang.org`,
	}},
	member{name: "rstudio_server", h: configRStudioServer, doc: "Run RStudio Server on port 8787 of a dev environment (implies install.r_lang(); Ubuntu bases)."},
	member{name: "entrypoint", h: configEntrypoint, doc: "The image's entrypoint, for images built with dev=False.", params: []string{
		`args:strs  # e.g. ["python3", "serve.py"]`,
	}},
	member{name: "repo", h: configRepo, doc: "The project's repository, recorded as OCI labels of the image.", params: []string{
		`url:str`,
		`description?:str=""`,
	}},
	member{name: "owner", h: configOwner, doc: "UID and GID that own what envd installs for the user (toolchains, downloads). The dev user keeps its own IDs (yours while the project is mounted, so that it stays writable), where the original envd gave it these.", params: []string{
		`uid:int`, `gid:int`,
	}},
)

func configPipIndex(c *call, a args) error {
	if err := c.once(); err != nil {
		return err
	}
	url := a.str("url", "")
	if url == "" {
		return c.errorf(`e.g. config.pip_index(url="https://pypi.org/simple")`, "config.pip_index: url is empty")
	}
	c.s.env.PipIndex = &ir.PipIndex{URL: url, ExtraURL: a.str("extra_url", ""), Trust: a.boolean("trust", false), Pos: c.pos}
	return nil
}

func configAptSource(c *call, a args) error {
	if err := c.once(); err != nil {
		return err
	}
	src := a.str("source", "")
	if src == "" {
		return c.errorf("give the content of a sources.list", "config.apt_source: source is empty")
	}
	c.s.env.AptSource = &ir.AptSource{Source: src, Pos: c.pos}
	return nil
}

// configJupyter serves Jupyter from the environment, which needs Python.
func configJupyter(c *call, a args) error {
	if err := c.once(); err != nil {
		return err
	}
	port := a.integer("port", 0)
	if port < 0 || port > 65535 {
		return c.errorf("use a port from 1 to 65535, or 0 for a free one", "config.jupyter: port %d is out of range", port)
	}
	c.implyPython()
	c.s.env.Jupyter = &ir.Jupyter{Token: a.str("token", ""), Port: port, Pos: c.pos}
	return nil
}

func (c *call) resources() *ir.Resources {
	if c.s.env.Resources == nil {
		c.s.env.Resources = &ir.Resources{Pos: c.pos}
	}
	return c.s.env.Resources
}

func configGPU(c *call, a args) error {
	if err := c.once(); err != nil {
		return err
	}
	n := a.integer("count", 0)
	if n < -1 || n == 0 {
		return c.errorf("give a number of GPUs, or -1 for all of them", "config.gpu: count %d is not a number of GPUs", n)
	}
	c.resources().GPUs = n
	return nil
}

func configShmSize(c *call, a args) error {
	if err := c.once(); err != nil {
		return err
	}
	n := a.integer("size", 0)
	if n < 1 {
		return c.errorf("give the size in megabytes, e.g. config.shm_size(size=2048)", "config.shm_size: size %d is not a size", n)
	}
	c.resources().ShmSizeMB = n
	return nil
}

func configEntrypoint(c *call, a args) error {
	if err := c.once(); err != nil {
		return err
	}
	c.s.env.Entrypoint = &ir.Entrypoint{Args: a.strs("args"), Pos: c.pos}
	return nil
}

func configRepo(c *call, a args) error {
	if err := c.once(); err != nil {
		return err
	}
	c.s.env.Repo = &ir.Repo{URL: a.str("url", ""), Description: a.str("description", ""), Pos: c.pos}
	return nil
}

func configOwner(c *call, a args) error {
	if err := c.once(); err != nil {
		return err
	}
	uid, gid := a.integer("uid", 0), a.integer("gid", 0)
	if uid < 0 || gid < 0 {
		return c.errorf("give the numbers `id -u` and `id -g` print", "config.owner: uid %d, gid %d: ids are not negative", uid, gid)
	}
	c.s.env.Owner = &ir.Owner{UID: uid, GID: gid, Pos: c.pos}
	return nil
}
