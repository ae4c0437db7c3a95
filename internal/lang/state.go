package lang

import (
	"fmt"
	"sort"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"envd.dev/envd/internal/ir"
)

// state is what one load has recorded so far. Builtins find it through the
// thread, so the builtin tables below are shared, immutable values.
type state struct {
	path string
	// starts maps the '(' of each call and the '.' of each attribute to the
	// start of the expression, so positions point at "install.cuda(...)"
	// rather than at its parenthesis.
	starts map[lineCol]syntax.Position
	env    ir.Environment
	// first holds the position of builtins that may be called only once.
	first map[string]ir.Pos
	// pythonBy names the builtin that chose the Python version ("" while
	// Python is absent or implied by python packages).
	pythonBy   string
	outOfSteps uint64 // the step limit, once it was hit
}

const stateKey = "envd.lang.state"

type lineCol struct{ line, col int32 }

func exprStarts(f *syntax.File) map[lineCol]syntax.Position {
	m := map[lineCol]syntax.Position{}
	syntax.Walk(f, func(n syntax.Node) bool {
		switch n := n.(type) {
		case *syntax.CallExpr:
			m[lineCol{n.Lparen.Line, n.Lparen.Col}] = syntax.Start(n)
		case *syntax.DotExpr:
			m[lineCol{n.Dot.Line, n.Dot.Col}] = syntax.Start(n)
		}
		return true
	})
	return m
}

func (s *state) pos(p syntax.Position) ir.Pos {
	if start, ok := s.starts[lineCol{p.Line, p.Col}]; ok {
		p = start
	}
	return ir.Pos{File: s.path, Line: int(p.Line), Col: int(p.Col)}
}

// innermost returns the position of the innermost frame in the user's file:
// the builtin call or the failing expression, even inside a helper function.
func (s *state) innermost(stack starlark.CallStack) ir.Pos {
	p, _ := s.innermostFrame(stack)
	return p
}

// innermostFrame also returns the name of the function running there.
func (s *state) innermostFrame(stack starlark.CallStack) (ir.Pos, string) {
	for i := len(stack) - 1; i >= 0; i-- {
		if stack[i].Pos.Filename() == s.path {
			return s.pos(stack[i].Pos), stack[i].Name
		}
	}
	return ir.Pos{File: s.path}, ""
}

// finish fills in what the file left out.
func (s *state) finish() *ir.Environment {
	env := s.env
	if env.Base.Image == "" {
		// No base(): the article's kind of environment, one to work in.
		env.Base = ir.Base{Image: ir.DefaultImage, Dev: true}
	}
	return &env
}

// call is one call of an envd builtin.
type call struct {
	s    *state
	name string // "install.cuda"
	pos  ir.Pos
}

func (c *call) errorf(hint, format string, a ...any) *ir.Error {
	return ir.Errorf(c.pos, hint, format, a...)
}

// once fails when a builtin that sets something for the whole environment
// was already called.
func (c *call) once() error {
	first, ok := c.s.first[c.name]
	if !ok {
		c.s.first[c.name] = c.pos
		return nil
	}
	hint := "call it once; change that call instead"
	if first == c.pos {
		hint = fmt.Sprintf("this line ran twice: envd calls the build function itself, so remove any call of it at the top of %s, and any loop around this line", c.s.path)
	}
	return c.errorf(hint, "%s() already called at %s", c.name, first)
}

// implyPython gives the environment the distribution's python when nothing
// asked for one yet: python packages and Jupyter need it.
func (c *call) implyPython() {
	if c.s.env.Python == nil {
		c.s.env.Python = &ir.Python{Pos: c.pos}
	}
}

// setPython records a Python version asked for explicitly; asking twice for
// different versions is a mistake.
func (c *call) setPython(version string) error {
	p := c.s.env.Python
	if p != nil && c.s.pythonBy != "" {
		if p.Version == version {
			return nil
		}
		return c.errorf("ask for one Python version", "python %s requested here, but %s() at %s already asked for python %s",
			version, c.s.pythonBy, p.Pos, p.Version)
	}
	c.s.env.Python = &ir.Python{Version: version, Pos: c.pos}
	c.s.pythonBy = c.name
	return nil
}

// handler does the work of one builtin with its converted arguments.
type handler func(c *call, a args) error

// member declares a builtin of a module: its name, handler and parameters.
// A nil handler records the call as an ir.OtherCall.
type member struct {
	name   string
	h      handler
	params []string
}

// newBuiltin wraps a handler as a Starlark builtin that finds the load's
// state, positions the call, converts the arguments and returns None.
func newBuiltin(name string, h handler, specs ...string) *starlark.Builtin {
	params := parseParams(name, specs)
	if h == nil {
		h = recordOther
	}
	return starlark.NewBuiltin(name, func(thread *starlark.Thread, _ *starlark.Builtin, pos starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		s, ok := thread.Local(stateKey).(*state)
		if !ok {
			return nil, fmt.Errorf("%s: called outside of an envd build file", name)
		}
		c := &call{s: s, name: name, pos: s.innermost(thread.CallStack())}
		a, err := c.unpack(params, pos, kwargs)
		if err != nil {
			return nil, err
		}
		if err := h(c, a); err != nil {
			return nil, err
		}
		return starlark.None, nil
	})
}

// recordOther keeps a call the build stages do not model yet, so that
// nothing the user wrote is dropped without a trace.
func recordOther(c *call, a args) error {
	call := ir.OtherCall{Name: c.name, Pos: c.pos}
	if len(a) > 0 {
		call.Args = a
	}
	c.s.env.Calls = append(c.s.env.Calls, call)
	return nil
}

// module is a namespace such as install or config. It is our own value, not
// starlarkstruct.Module, so that a misspelt member gets envd's message.
type module struct {
	name    string
	members map[string]*starlark.Builtin
	names   []string
}

func newModule(name string, fns ...member) *module {
	m := &module{name: name, members: map[string]*starlark.Builtin{}}
	for _, f := range fns {
		m.members[f.name] = newBuiltin(name+"."+f.name, f.h, f.params...)
		m.names = append(m.names, f.name)
	}
	sort.Strings(m.names)
	return m
}

var _ starlark.HasAttrs = (*module)(nil)

func (m *module) String() string        { return "<module " + m.name + ">" }
func (m *module) Type() string          { return "module" }
func (m *module) Freeze()               {}
func (m *module) Truth() starlark.Bool  { return true }
func (m *module) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable type: module") }
func (m *module) AttrNames() []string   { return m.names }

func (m *module) Attr(name string) (starlark.Value, error) {
	if b, ok := m.members[name]; ok {
		return b, nil
	}
	msg := fmt.Sprintf("%s has no function %q", m.name, name)
	if near := nearest(name, m.names); near != "" {
		msg += fmt.Sprintf("; did you mean %q?", near)
	}
	// No position here: evalError places it at the innermost user frame.
	return nil, &ir.Error{Msg: msg, Hint: fmt.Sprintf("%s has %s", m.name, strings.Join(m.names, ", "))}
}

// predeclared is what every build file sees besides Starlark's own builtins.
var predeclared = starlark.StringDict{
	"base":       newBuiltin("base", base, "os?:str", "language?:str", "image?:str", "dev?:bool"),
	"shell":      newBuiltin("shell", shell, "name?:str"),
	"run":        newBuiltin("run", run, "commands:strs", "mount_host?:bool"),
	"git_config": newBuiltin("git_config", gitConfig, "name?:str|none", "email?:str|none", "editor?:str|none"),
	"include":    starlark.NewBuiltin("include", include),
	"install":    installModule,
	"config":     configModule,
	"runtime":    runtimeModule,
	"io":         ioModule,
}

// modules lists the namespaces, to suggest "install.python_packages" for a
// bare python_packages(...).
var modules = []*module{installModule, configModule, runtimeModule, ioModule}
