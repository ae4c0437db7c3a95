package ir

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"
)

// Error is a mistake in a build file: where it is, what is wrong, and how to
// fix it. Every package below the CLI reports user mistakes with it.
type Error struct {
	Pos  Pos
	Msg  string
	Hint string
}

func (e *Error) Error() string {
	s := e.Pos.String() + ": " + e.Msg
	if e.Hint != "" {
		s += "\n  hint: " + e.Hint
	}
	return s
}

// Errorf makes an *Error at pos.
func Errorf(pos Pos, hint, format string, args ...any) *Error {
	return &Error{Pos: pos, Msg: fmt.Sprintf(format, args...), Hint: hint}
}

var (
	aptName        = regexp.MustCompile(`^[a-z0-9][a-z0-9+.\-]*(:[a-z0-9\-]+)?(=[A-Za-z0-9.+~:\-]+)?$`)
	versionSpec    = `\s*(===|==|~=|!=|<=|>=|<|>)\s*[A-Za-z0-9.*+!_\-]+\s*`
	pipRequirement = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._\-]*[A-Za-z0-9])?(\[[A-Za-z0-9._,\- ]+\])?(` + versionSpec + `(,` + versionSpec + `)*)?$`)
	pythonVersion  = regexp.MustCompile(`^3(\.[0-9]+){0,2}$`)
	envKey         = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	extensionID    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9\-]*\.[A-Za-z0-9][A-Za-z0-9\-_.]*(@[A-Za-z0-9.\-]+)?$`)
)

// SSHPort is where the agent's sshd listens in a dev container: the same
// value as compile.SSHPort (a test in internal/cli keeps them equal).
const SSHPort = 2222

// Validate reports every mistake it finds, each an *Error, joined.
func (e *Environment) Validate() error {
	var errs []error
	add := func(err *Error) { errs = append(errs, err) }

	if e.Base.Image == "" {
		add(Errorf(e.Base.Pos, `call base(image="debian:bookworm") or base(os="ubuntu22.04", language="python3")`, "no base image"))
	}
	if e.Python != nil && e.Python.Version != "" && !pythonVersion.MatchString(e.Python.Version) {
		add(Errorf(e.Python.Pos, `write it as "3.11" or "3.11.7"`, "python version %q is not a Python 3 version", e.Python.Version))
	}
	for _, p := range e.AptPackages {
		if !aptName.MatchString(p.Name) {
			add(Errorf(p.Pos, "apt package names are lower-case letters, digits and + - . (optionally name=version)", "invalid apt package name %q", p.Name))
		}
	}
	for _, p := range e.PythonPackages {
		if !pipRequirement.MatchString(p.Name) {
			add(Errorf(p.Pos, `give a name with an optional version, e.g. "numpy" or "numpy>=1.26,<2"; put markers and URLs in a requirements file`, "invalid python requirement %q", p.Name))
		}
	}
	if e.PipOptions != nil {
		errs = append(errs, e.PipOptions.validate()...)
	}
	for _, p := range e.VSCodeExtensions {
		if IsLocalVSIX(p.Name) {
			if err := checkContextPath(p.Name); err != "" {
				add(Errorf(p.Pos, "use a path inside the build directory, relative to it", "extension file %q %s", p.Name, err))
			}
			continue
		}
		if !extensionID.MatchString(p.Name) {
			add(Errorf(p.Pos, `extensions are named publisher.name, e.g. "ms-python.python"`, "invalid extension id %q", p.Name))
		}
	}
	for _, f := range append(append([]File{}, e.Requirements...), e.LocalWheels...) {
		if err := checkContextPath(f.Path); err != "" {
			add(Errorf(f.Pos, "use a path inside the build directory, relative to it", "%q %s", f.Path, err))
		}
	}
	for _, s := range e.Steps {
		switch {
		case s.Copy != nil:
			c := s.Copy
			// From an image the source is a path in it, else one in the build directory.
			switch err := checkContextPath(c.Source); {
			case c.Image != "" && !path.IsAbs(c.Source):
				add(Errorf(s.Pos, `give the absolute path of the file or directory in the image, e.g. "/usr/local/bin/micromamba"`,
					"copy source %q is not an absolute path (in the image %s)", c.Source, c.Image))
			case c.Image == "" && err != "":
				add(Errorf(s.Pos, "use a path inside the build directory, relative to it; for a path in an image, give image= too", "copy source %q %s", c.Source, err))
			}
			if c.Target == "" {
				add(Errorf(s.Pos, `give a target such as "/home/envd/data"`, "copy target is empty"))
			}
		case s.Run != nil:
			if len(s.Run.Commands) == 0 {
				add(Errorf(s.Pos, `give at least one command: run(commands=["echo hi"])`, "run() has no commands"))
			}
		}
	}
	for k := range e.Environ {
		if !envKey.MatchString(k) {
			add(Errorf(Pos{}, "names are letters, digits and _, not starting with a digit", "invalid environment variable name %q", k))
		}
	}
	envdPorts, hostPorts := map[int]Pos{}, map[int]Pos{}
	for _, x := range e.Expose {
		if first, dup := envdPorts[x.EnvdPort]; dup {
			add(Errorf(x.Pos, "expose each port once; remove this call or change that one", "envd_port %d is already exposed at %s", x.EnvdPort, first))
		} else {
			envdPorts[x.EnvdPort] = x.Pos
		}
		if first, dup := hostPorts[x.HostPort]; dup && x.HostPort != 0 {
			add(Errorf(x.Pos, "give each a different host_port, or 0 to pick a free one", "host_port %d is already used at %s", x.HostPort, first))
		} else {
			hostPorts[x.HostPort] = x.Pos
		}
		if e.Base.Dev && x.EnvdPort == SSHPort {
			add(Errorf(x.Pos, "envd up already publishes ssh (see `envd up` output or ssh NAME.envd); remove this call, or expose another port",
				"envd_port %d is the environment's ssh port, which envd publishes itself", SSHPort))
		}
		if x.EnvdPort < 1 || x.EnvdPort > 65535 {
			add(Errorf(x.Pos, "use a port from 1 to 65535", "envd_port %d is out of range", x.EnvdPort))
		}
		if x.HostPort < 0 || x.HostPort > 65535 {
			add(Errorf(x.Pos, "use a port from 1 to 65535, or 0 to pick a free one", "host_port %d is out of range", x.HostPort))
		}
	}
	for _, d := range append(append([]Daemon{}, e.Daemons...), e.Init...) {
		if len(d.Command) == 0 || d.Command[0] == "" {
			add(Errorf(d.Pos, `give the command as a list: [["python3", "-m", "http.server"]]`, "empty command"))
		}
	}
	errs = append(errs, e.validateLanguages()...)
	return errors.Join(errs...)
}

// checkContextPath returns why p cannot name a file in the build context, or "".
func checkContextPath(p string) string {
	switch {
	case p == "":
		return "is empty"
	case path.IsAbs(p):
		return "is absolute"
	case path.Clean(p) == ".." || strings.HasPrefix(path.Clean(p), "../"):
		return "is outside the build directory"
	}
	return ""
}

// IsLocalVSIX tells an extension file in the build directory ("tools/x.vsix")
// from a marketplace id ("ms-python.python").
func IsLocalVSIX(name string) bool { return strings.HasSuffix(strings.ToLower(name), ".vsix") }
