package lang

import (
	"net"
	"regexp"

	"envd.dev/envd/internal/ir"
)

// runtimeModule is runtime.*: how the container runs, not what is in the image.
var runtimeModule = newModule("runtime",
	member{"environ", runtimeEnviron, []string{"env?:dict", "extra_path?:strs"}},
	member{"expose", runtimeExpose, []string{"envd_port:int", "host_port?:int", "service?:str", "listen_addr?:str"}},
	member{"daemon", runtimeDaemon, []string{"commands:argvs"}},
	member{"init", runtimeInit, []string{"commands:commands"}},
	member{"mount", runtimeMount, []string{"host_path|src:str", "envd_path|dest:str"}},

	member{"command", nil, []string{"commands:dict"}},
)

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// runtimeEnviron merges variables into the environment; a later call wins.
func runtimeEnviron(c *call, a args) error {
	env := &c.s.env
	for k, v := range a.dict("env") {
		if !envName.MatchString(k) {
			return c.errorf("names are letters, digits and _, not starting with a digit", "runtime.environ: invalid environment variable name %q", k)
		}
		if env.Environ == nil {
			env.Environ = map[string]string{}
		}
		env.Environ[k] = v
	}
	env.ExtraPath = append(env.ExtraPath, a.strs("extra_path")...)
	return nil
}

func runtimeExpose(c *call, a args) error {
	x := ir.Expose{
		EnvdPort:   a.integer("envd_port", 0),
		HostPort:   a.integer("host_port", 0),
		Service:    a.str("service", ""),
		ListenAddr: a.str("listen_addr", ""),
		Pos:        c.pos,
	}
	if x.ListenAddr != "" && net.ParseIP(x.ListenAddr) == nil {
		return c.errorf(`use an IP address such as "127.0.0.1" or "0.0.0.0"`, "runtime.expose: listen_addr %q is not an IP address", x.ListenAddr)
	}
	c.s.env.Expose = append(c.s.env.Expose, x)
	return nil
}

// runtimeDaemon adds one supervised process per command.
func runtimeDaemon(c *call, a args) error {
	for _, argv := range a.argvs("commands") {
		c.s.env.Daemons = append(c.s.env.Daemons, ir.Daemon{Command: argv, Pos: c.pos})
	}
	return nil
}

func runtimeInit(c *call, a args) error {
	for _, argv := range a.argvs("commands") {
		c.s.env.Init = append(c.s.env.Init, ir.Daemon{Command: argv, Pos: c.pos})
	}
	return nil
}

// runtimeMount records paths as written: "~" is expanded where the
// container starts, not here.
func runtimeMount(c *call, a args) error {
	c.s.env.Mounts = append(c.s.env.Mounts, ir.Mount{HostPath: a.str("host_path", ""), EnvdPath: a.str("envd_path", ""), Pos: c.pos})
	return nil
}
