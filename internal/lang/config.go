package lang

import "envd.dev/envd/internal/ir"

// configModule is config.*: settings of the environment.
var configModule = newModule("config",
	member{"pip_index", configPipIndex, []string{"url:str", "extra_url?:str", "trust?:bool"}},
	member{"apt_source", configAptSource, []string{"source:str"}},
	// Early envd called the token "password".
	member{"jupyter", configJupyter, []string{"token|password?:str", "port?:int"}},

	member{"conda_channel", nil, []string{"channel:str"}},
	member{"gpu", nil, []string{"count:int"}},
	member{"shm_size", nil, []string{"size:int"}},
	member{"cran_mirror", nil, []string{"url:str"}},
	member{"julia_pkg_server", nil, []string{"url:str"}},
	member{"rstudio_server", nil, nil},
	member{"entrypoint", nil, []string{"args:strs"}},
	member{"repo", nil, []string{"url:str", "description?:str"}},
	member{"owner", nil, []string{"uid:int", "gid:int"}},
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
	port := a.integer("port", 8888)
	if port < 1 || port > 65535 {
		return c.errorf("use a port from 1 to 65535", "config.jupyter: port %d is out of range", port)
	}
	c.implyPython()
	c.s.env.Jupyter = &ir.Jupyter{Token: a.str("token", ""), Port: port, Pos: c.pos}
	return nil
}
