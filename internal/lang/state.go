package lang

import (
	"fmt"
	"sort"
	"strings"
	"sync/atomic"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"envd.dev/envd/internal/ir"
)

// state is what one load has recorded so far. Builtins find it through the
// thread, so the builtin tables below are shared, immutable values.
type state struct {
	path string // the build file, as given
	opts Loader
	// starts maps, per file executed, the '(' of each call and the '.' of
	// each attribute to the start of the expression, so positions point at
	// "install.cuda(...)" rather than at its parenthesis.
	starts map[string]map[lineCol]syntax.Position
	// calls maps, per file, the '(' of each call to the call, so a builtin
	// can point at one of its arguments.
	calls map[string]map[lineCol]*syntax.CallExpr
	// read lists every file read, in order: the build file, included
	// modules, envd.lock.
	read []string
	env  ir.Environment
	// first holds the position of builtins that may be called only once.
	first map[string]ir.Pos
	// pythonBy names the builtin that chose the Python version ("" while
	// Python is absent or implied by python packages).
	pythonBy    string
	outOfSteps  uint64        // the step limit, once it was hit
	outOfMemory atomic.Uint64 // the memory limit, once it was hit (watchMemory)
	memBase     uint64        // the heap when the load began
	inc         *includes     // include() bookkeeping
	pipCalls    []pipCall     // each install.python_packages call, in order
}

const stateKey = "envd.lang.state"

type lineCol struct{ line, col int32 }

func newState(path string, opts Loader) *state {
	return &state{path: path, opts: opts, starts: map[string]map[lineCol]syntax.Position{},
		calls: map[string]map[lineCol]*syntax.CallExpr{}, first: map[string]ir.Pos{}}
}

// exec parses and runs one file (the build file or an included module) on
// thread, and returns its globals. Errors are *ir.Error at a place in it.
func (s *state) exec(thread *starlark.Thread, filename string, src []byte) (starlark.StringDict, error) {
	s.read = append(s.read, filename)
	src = trimBOM(src)
	if err := checkSource(filename, src); err != nil {
		return nil, err
	}
	f, err := fileOptions.Parse(filename, src, 0)
	if err != nil {
		return nil, syntaxError(filename, err, src)
	}
	if err := checkShadowing(f); err != nil {
		return nil, err
	}
	guardOps(f)
	s.starts[filename], s.calls[filename] = exprStarts(f)
	prog, err := starlark.FileProgram(f, fileGlobals.Has)
	if err != nil {
		return nil, s.resolveErrors(err, f)
	}
	globals, err := prog.Init(thread, fileGlobals)
	if err != nil {
		return nil, s.evalError(err)
	}
	return globals, nil
}

func exprStarts(f *syntax.File) (map[lineCol]syntax.Position, map[lineCol]*syntax.CallExpr) {
	m, calls := map[lineCol]syntax.Position{}, map[lineCol]*syntax.CallExpr{}
	syntax.Walk(f, func(n syntax.Node) bool {
		switch n := n.(type) {
		case *syntax.CallExpr:
			m[lineCol{n.Lparen.Line, n.Lparen.Col}] = syntax.Start(n)
			calls[lineCol{n.Lparen.Line, n.Lparen.Col}] = n
		case *syntax.DotExpr:
			m[lineCol{n.Dot.Line, n.Dot.Col}] = syntax.Start(n)
		}
		return true
	})
	return m, calls
}

func (s *state) pos(p syntax.Position) ir.Pos {
	if start, ok := s.starts[p.Filename()][lineCol{p.Line, p.Col}]; ok {
		p = start
	}
	return ir.Pos{File: p.Filename(), Line: int(p.Line), Col: int(p.Col)}
}

// innermostFrame returns the position of the innermost frame in a file of
// this load (the builtin call or the failing expression, even inside a
// helper function or an included module) and the function running there.
func (s *state) innermostFrame(stack starlark.CallStack) (ir.Pos, string) {
	if f, ok := s.innermostCall(stack); ok {
		return s.pos(f.Pos), f.Name
	}
	return ir.Pos{File: s.path}, ""
}

// innermostCall is the innermost frame in a file of this load, as Starlark
// has it: at a call, the position of its '('.
func (s *state) innermostCall(stack starlark.CallStack) (starlark.CallFrame, bool) {
	for i := len(stack) - 1; i >= 0; i-- {
		if _, ours := s.starts[stack[i].Pos.Filename()]; ours {
			return stack[i], true
		}
	}
	return starlark.CallFrame{}, false
}

// finish fills in what the file left out; fn is where the build function
// is defined.
func (s *state) finish(fn ir.Pos) *ir.Environment {
	env := s.env
	if env.Base.Image == "" {
		// No base() is base(), as in the original envd: ubuntu:22.04, not
		// a dev environment. Errors about the base point at the function.
		env.Base = ir.Base{Image: ir.DefaultImage, Implicit: true, Pos: fn}
	}
	return &env
}

// call is one call of an envd builtin.
type call struct {
	s      *state
	thread *starlark.Thread
	name   string // "install.cuda"
	pos    ir.Pos
	expr   *syntax.CallExpr // the call in the file; nil when unknown
}

// itemPositions returns where each of the n items of the list argument
// given as param (or positionally at index) is written, for errors about
// one item: the item's own place when the argument is a list or tuple
// written out (or a single string), else the call's.
func (c *call) itemPositions(param string, index, n int) []ir.Pos {
	out := make([]ir.Pos, n)
	for i := range out {
		out[i] = c.pos
	}
	arg := c.argExpr(param, index)
	var items []syntax.Expr
	switch x := arg.(type) {
	case *syntax.ListExpr:
		items = x.List
	case *syntax.TupleExpr:
		items = x.List
	case *syntax.ParenExpr:
		if t, ok := x.X.(*syntax.TupleExpr); ok {
			items = t.List
		}
	case *syntax.Literal:
		items = []syntax.Expr{x}
	}
	if len(items) != n {
		return out
	}
	for i, e := range items {
		p := syntax.Start(e)
		out[i] = ir.Pos{File: p.Filename(), Line: int(p.Line), Col: int(p.Col)}
	}
	return out
}

// argExpr finds the expression of an argument in the call; nil when it is
// not written there (a default, *args or **kwargs).
func (c *call) argExpr(param string, index int) syntax.Expr {
	if c.expr == nil {
		return nil
	}
	positional := 0
	for _, a := range c.expr.Args {
		switch a := a.(type) {
		case *syntax.BinaryExpr:
			if id, ok := a.X.(*syntax.Ident); ok && a.Op == syntax.EQ {
				if id.Name == param {
					return a.Y
				}
				continue
			}
		case *syntax.UnaryExpr:
			if a.Op == syntax.STAR || a.Op == syntax.STARSTAR {
				return nil
			}
		}
		if positional == index {
			return a
		}
		positional++
	}
	return nil
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

// handler does the work of one builtin with its converted arguments; the
// builtin returns None.
type handler func(c *call, a args) error

// valueHandler is a handler whose builtin returns a value.
type valueHandler func(c *call, a args) (starlark.Value, error)

// member declares a builtin: its name, what it does, its parameters (see
// param) and one line of documentation. The tables of members are the one
// source of truth for the builtins, `envd reference` and the editor stubs.
type member struct {
	name   string
	h      handler
	params []string
	doc    string
	// v replaces h for builtins that return a value of type returns (a
	// Python type, for the stubs).
	v       valueHandler
	returns string
	// value makes the member a string constant instead of a builtin
	// (data.path.huggingface); sub makes it a namespace of them (data.path).
	value string
	sub   *module
	// altOrder is a second order of the positional parameters, used for a
	// call whose positional arguments altPositional recognises (base: envd
	// v1's base(image, dev) and the article's base(os, language)).
	altOrder      []string
	altPositional func(pos starlark.Tuple) bool
}

// newBuiltin wraps a member as a Starlark builtin that finds the load's
// state, positions the call, converts the arguments and runs the handler.
func newBuiltin(name string, m member) *starlark.Builtin {
	params := parseParams(name, m.params)
	run := m.v
	if run == nil {
		run = func(c *call, a args) (starlark.Value, error) { return starlark.None, m.h(c, a) }
	}
	return starlark.NewBuiltin(name, func(thread *starlark.Thread, _ *starlark.Builtin, pos starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		s, ok := thread.Local(stateKey).(*state)
		if !ok {
			return nil, fmt.Errorf("%s: called outside of an envd build file", name)
		}
		c := &call{s: s, thread: thread, name: name, pos: ir.Pos{File: s.path}}
		if f, ok := s.innermostCall(thread.CallStack()); ok {
			c.pos, c.expr = s.pos(f.Pos), s.calls[f.Pos.Filename()][lineCol{f.Pos.Line, f.Pos.Col}]
		}
		order := params
		if m.altPositional != nil && m.altPositional(pos) {
			order = reorder(params, m.altOrder)
		}
		a, err := c.unpack(order, pos, kwargs)
		if err != nil {
			return nil, err
		}
		return run(c, a)
	})
}

// module is a namespace: a builtin one such as install or config, or one
// that include() returns. It is our own value, not starlarkstruct.Module, so
// that a misspelt member gets envd's message.
type module struct {
	name    string
	doc     string
	members map[string]starlark.Value
	names   []string // sorted
	decl    []member // builtin modules: in declared order, for the reference
	noun    string   // what its members are, for errors; "" is "function"
}

func newModule(name, doc string, fns ...member) *module {
	m := &module{name: name, doc: doc, members: map[string]starlark.Value{}, decl: fns}
	for _, f := range fns {
		switch {
		case f.sub != nil:
			m.members[f.name] = f.sub
		case f.value != "":
			m.members[f.name] = starlark.String(f.value)
		default:
			m.members[f.name] = newBuiltin(name+"."+f.name, f)
		}
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
	if v, ok := m.members[name]; ok {
		return v, nil
	}
	noun := m.noun
	if noun == "" {
		noun = "function"
	}
	msg := fmt.Sprintf("%s has no %s %q", m.name, noun, name)
	if near := nearest(name, m.names); near != "" {
		msg += fmt.Sprintf("; did you mean %q?", near)
	}
	hint := fmt.Sprintf("%s has %s", m.name, strings.Join(m.names, ", "))
	if len(m.names) == 0 {
		hint = m.name + " defines no public functions"
	}
	if strings.HasPrefix(name, "_") {
		hint = "names that start with _ are private to their module; " + hint
	}
	// No position here: evalError places it at the innermost user frame.
	return nil, &ir.Error{Msg: msg, Hint: hint}
}

// globals are the builtins outside any module, in the order the reference
// lists them.
var globals = []member{
	{name: "base", h: base, doc: "Choose the base image: envd v1's image= and dev=, or the article's os= and language= form, a dev environment. " +
		"As in the original envd, base() is ubuntu:22.04 without dev, and so is a build function that never calls base(). " +
		"Positional arguments are v1's base(image, dev), or the article's base(os, language) when the first is an os name (or close to one) or the second a string.",
		altOrder: []string{"os", "language", "image", "dev"}, altPositional: articleBase, params: []string{
			`image?:str=""  # any image, e.g. "debian:bookworm" or "nvidia/cuda:12.4.1-devel-ubuntu22.04"; without it or os=, ubuntu:22.04`,
			`dev?:bool  # a development environment (agent, user, shell, ssh), what envd up needs; default True with os= or language= (and no image=), else False`,
			`os?:str=""  # ubuntu20.04, ubuntu22.04, ubuntu24.04, debian11 or debian12`,
			`language?:str=""  # python, python3, python3.X; r or julia`,
		}},
	{name: "shell", h: shell, doc: "Choose the interactive shell of a dev environment.", params: []string{
		`name?:str="base"  # base (the image's own), bash, zsh or fish`,
	}},
	{name: "run", h: run, doc: "Run shell commands at build time, in order, in one step after every package.", params: []string{
		`commands:strs  # each runs with sh -c; the step fails when one fails`,
		`mount_host?:bool=False  # mount the build directory read-only at /home/envd/PROJECT (the build is then never skipped)`,
	}},
	{name: "git_config", h: gitConfig, doc: "Set git's user name, email and editor in the image.", params: []string{
		`name?:str|none=None`, `email?:str|none=None`, `editor?:str|none=None`,
	}},
	{name: "include", v: include, returns: "Any", doc: "Load a shared .envd module from a git repository or a file and return its public functions.", params: []string{
		`git?:str=""  # repository URL (https://, ssh, file:// or a local path); pinned by commit in envd.lock`,
		`ref?:str=""  # tag, branch or commit of git; default: the repository's default branch`,
		`path?:str=""  # without git: a .envd file relative to this file; with git: a file in the repository (default: every .envd file in it, in its folders too, hidden ones aside; a name two files define is an error)`,
	}},
}

// predeclared is what every build file sees besides Starlark's own
// builtins. It is filled in init: include() runs files that see it.
var predeclared starlark.StringDict

func init() {
	predeclared = starlark.StringDict{}
	for _, g := range globals {
		predeclared[g.name] = newBuiltin(g.name, g)
	}
	for _, m := range modules {
		predeclared[m.name] = m
	}
	fileGlobals = withHidden(predeclared)
}

// modules lists the namespaces, in the order the reference lists them; it
// also suggests "install.python_packages" for a bare python_packages(...).
var modules = []*module{installModule, configModule, runtimeModule, ioModule, dataModule}
