package lang

import (
	"net"
	"path"
	"regexp"
	"strings"

	"envd.dev/envd/internal/contract"
	"envd.dev/envd/internal/ir"
)

// runtimeModule is runtime.*: how the container runs, not what is in the image.
var runtimeModule = newModule("runtime", "How the container runs (envd up), not what is in the image.",
	member{name: "environ", h: runtimeEnviron, doc: "Environment variables and PATH entries, in build steps and in the image; a later call wins.", params: []string{
		`env?:dict={}  # name to value`,
		`extra_path?:strs=[]  # directories put on PATH after the venv`,
	}},
	member{name: "expose", h: runtimeExpose, doc: "Publish a port of the container (on 127.0.0.1 unless listen_addr says otherwise).", params: []string{
		`envd_port:int  # the port in the container`,
		`host_port?:int=0  # the port on the host; 0 picks a free one`,
		`service?:str=""  # a name shown by envd up`,
		`listen_addr?:str=""  # the host address, e.g. "0.0.0.0"`,
	}},
	member{name: "daemon", h: runtimeDaemon, doc: "Processes the environment's supervisor starts and keeps running.", params: []string{
		`commands:argvs  # one argv list per process, e.g. [["python3", "-m", "http.server"]]`,
	}},
	member{name: "init", h: runtimeInit, doc: "Commands run once when the container starts, before the daemons.", params: []string{
		`commands:commands  # argv lists, or strings run with sh -c`,
	}},
	member{name: "mount", h: runtimeMount, doc: "Mount a host directory into the container.", params: []string{
		`host_path|src:str  # on the host; ~ is the user's home, a relative path is relative to the build directory; /, system directories, your home itself and the Docker socket need envd up --allow-mount PATH`,
		`envd_path|dest:str  # in the container: an absolute path, or ~/... in the dev user's home (/home/envd)`,
	}},
	member{name: "command", h: runtimeCommand, doc: "Named commands for the environment, like a Makefile's targets.", params: []string{
		`commands:dict  # name to shell command, e.g. {"train": "python train.py"}`,
	}},
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

// runtimeMount records the host path as written ("~" is the host user's
// home, expanded where the container starts). In the container path "~" is
// the dev user's home, as in the original envd; it must then be absolute,
// which Docker needs.
func runtimeMount(c *call, a args) error {
	target := a.str("envd_path", "")
	switch {
	case target == "~":
		target = contract.DevHome
	case strings.HasPrefix(target, "~/"):
		target = path.Join(contract.DevHome, target[2:])
	}
	if !path.IsAbs(target) {
		return c.errorf(`give an absolute path such as "/home/envd/data", or "~/data" for one in the dev user's home`,
			"%s: envd_path %q is not an absolute path", c.name, target)
	}
	c.s.env.Mounts = append(c.s.env.Mounts, ir.Mount{HostPath: a.str("host_path", ""), EnvdPath: target, Pos: c.pos})
	return nil
}

// commandName is any one line, as the original envd allows ("go version").
var commandName = regexp.MustCompile(`^[^\n\r]*\S[^\n\r]*$`)

// runtimeCommand merges named commands; a later call wins.
func runtimeCommand(c *call, a args) error {
	env := &c.s.env
	for name, cmd := range a.dict("commands") {
		if !commandName.MatchString(name) {
			return c.errorf("a name is one line of text, e.g. \"train\" or \"go version\"", "runtime.command: invalid command name %q", name)
		}
		if cmd == "" {
			return c.errorf(`e.g. {"train": "python train.py"}`, "runtime.command: command %q is empty", name)
		}
		if env.Commands == nil {
			env.Commands = map[string]string{}
		}
		env.Commands[name] = cmd
	}
	return nil
}
