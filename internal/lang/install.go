package lang

import (
	"regexp"

	"envd.dev/envd/internal/ir"
)

var cudaVersion = regexp.MustCompile(`^[0-9]+(\.[0-9]+){0,2}$`)

// installModule is install.*: what goes into the image. Parameter names and
// defaults follow envd's v1 API; functions without a handler are recorded as
// ir.OtherCall until a build stage supports them.
var installModule = newModule("install",
	member{"python", installPython, []string{"version?:str"}},
	member{"apt_packages", installApt, []string{"name?:strs"}},
	member{"system_packages", installApt, []string{"name?:strs"}}, // envd v0's name
	member{"python_packages", installPythonPackages, []string{"name?:strs", "requirements?:str", "local_wheels?:strs"}},
	member{"cuda", installCUDA, []string{"version:str", "cudnn?:str|none"}},
	member{"vscode_extensions", installVSCode, []string{"name:strs"}},

	member{"conda", nil, []string{"use_mamba?:bool"}},
	member{"uv", nil, []string{"python_version?:str"}},
	member{"pixi", nil, []string{"use_pixi_mirror?:bool", "pypi_index?:str|none"}},
	member{"conda_packages", nil, []string{"name?:strs", "channel?:strs", "env_file?:str"}},
	member{"r_lang", nil, nil},
	member{"r_packages", nil, []string{"name:strs"}},
	member{"julia", nil, nil},
	member{"julia_packages", nil, []string{"name:strs"}},
	member{"rust", nil, []string{"version?:str|none"}},
	member{"go", nil, []string{"version?:str|none"}},
	member{"nodejs", nil, []string{"version?:str|none"}},
)

// installPython asks for a Python version; envd v1's default is 3.11.
func installPython(c *call, a args) error {
	return c.setPython(a.str("version", "3.11"))
}

func installApt(c *call, a args) error {
	for _, n := range a.strs("name") {
		c.s.env.AptPackages = append(c.s.env.AptPackages, ir.Package{Name: n, Pos: c.pos})
	}
	return nil
}

func installPythonPackages(c *call, a args) error {
	c.implyPython()
	env := &c.s.env
	for _, n := range a.strs("name") {
		env.PythonPackages = append(env.PythonPackages, ir.Package{Name: n, Pos: c.pos})
	}
	if r := a.str("requirements", ""); r != "" {
		env.Requirements = append(env.Requirements, ir.File{Path: r, Pos: c.pos})
	}
	for _, w := range a.strs("local_wheels") {
		env.LocalWheels = append(env.LocalWheels, ir.File{Path: w, Pos: c.pos})
	}
	return nil
}

func installCUDA(c *call, a args) error {
	if err := c.once(); err != nil {
		return err
	}
	version := a.str("version", "")
	if !cudaVersion.MatchString(version) {
		return c.errorf(`write it as install.cuda(version="11.6") or "12.4.1"`, "install.cuda: %q is not a CUDA version", version)
	}
	c.s.env.CUDA = &ir.CUDA{Version: version, CUDNN: a.str("cudnn", "8"), Pos: c.pos}
	return nil
}

func installVSCode(c *call, a args) error {
	for _, n := range a.strs("name") {
		c.s.env.VSCodeExtensions = append(c.s.env.VSCodeExtensions, ir.Package{Name: n, Pos: c.pos})
	}
	return nil
}
