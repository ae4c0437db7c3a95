// Package lang runs a build.envd file (Starlark, a Python dialect) and
// returns the environment it declares as an ir.Environment.
//
// The file is executed once, so that its top level defines functions; then
// the build function (by default "build") is called with no arguments. The
// builtins (base, install.*, config.*, runtime.*, io.*, shell, run,
// git_config) only record what they are asked for, with the position of each
// call. Every mistake a user can make comes back as an *ir.Error that starts
// with FILE:LINE:COL, says what is wrong and how to fix it.
package lang

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"envd.dev/envd/internal/ir"
)

// DefaultFunc is the function called when none is named.
const DefaultFunc = "build"

// DefaultMaxSteps bounds the Starlark steps of one load, so that an endless
// loop ends with an error instead of hanging envd. Real files use a few
// thousand.
const DefaultMaxSteps = 10_000_000

// Result is what a build file declared.
type Result struct {
	Env *ir.Environment // already passed Validate
	// Files lists every file read: the build file, later included modules.
	Files []string
}

// Loader runs build files. The zero value is ready to use.
type Loader struct {
	// Print receives the output of print(); nil means os.Stderr.
	Print io.Writer
	// MaxSteps overrides DefaultMaxSteps when non-zero.
	MaxSteps uint64
}

// Load runs the build file at path (as the user gave it; positions use it
// verbatim) and calls fn, DefaultFunc when empty.
func Load(path, fn string) (*Result, error) { return Loader{}.Load(path, fn) }

// LoadSource is Load for a file already in memory; filename is used in positions.
func LoadSource(filename string, src []byte, fn string) (*Result, error) {
	return Loader{}.LoadSource(filename, src, fn)
}

// Load runs the build file at path; see the package function Load.
func (l Loader) Load(path, fn string) (*Result, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, ir.Errorf(ir.Pos{File: path},
			"run envd in the directory that holds build.envd, or name the file with -f PATH",
			"cannot read the build file: %v", unwrapPathError(err))
	}
	return l.LoadSource(path, src, fn)
}

// fileOptions makes Starlark as close to Python as it gets.
var fileOptions = &syntax.FileOptions{
	Set:             true,
	While:           true,
	TopLevelControl: true,
	GlobalReassign:  true,
	Recursion:       true,
}

// LoadSource runs a build file held in memory; see the package function LoadSource.
func (l Loader) LoadSource(filename string, src []byte, fn string) (res *Result, err error) {
	defer func() {
		// A last resort: a bug in a builtin must not crash the CLI.
		if r := recover(); r != nil {
			res, err = nil, ir.Errorf(ir.Pos{File: filename}, "this is a bug in envd; please report it with your build file",
				"internal error while loading: %v", r)
		}
	}()
	if fn == "" {
		fn = DefaultFunc
	}
	s := &state{path: filename, first: map[string]ir.Pos{}}

	f, err := fileOptions.Parse(filename, src, 0)
	if err != nil {
		return nil, s.syntaxError(err, src)
	}
	s.starts = exprStarts(f)
	prog, err := starlark.FileProgram(f, predeclared.Has)
	if err != nil {
		return nil, s.resolveErrors(err, f)
	}

	thread := s.thread(l)
	globals, err := prog.Init(thread, predeclared)
	if err != nil {
		return nil, s.evalError(err)
	}
	build, err := s.lookup(globals, fn)
	if err != nil {
		return nil, err
	}
	if _, err := starlark.Call(thread, build, nil, nil); err != nil {
		return nil, s.evalError(err)
	}

	env := s.finish()
	if err := env.ApplyCUDA(); err != nil {
		return nil, err
	}
	if err := env.Validate(); err != nil {
		return nil, err
	}
	return &Result{Env: env, Files: []string{filename}}, nil
}

// thread makes the Starlark thread: print goes to the loader's writer, a
// step budget stops endless loops, and load() explains it is not supported.
func (s *state) thread(l Loader) *starlark.Thread {
	out := l.Print
	if out == nil {
		out = os.Stderr
	}
	max := l.MaxSteps
	if max == 0 {
		max = DefaultMaxSteps
	}
	thread := &starlark.Thread{
		Name:  s.path,
		Print: func(_ *starlark.Thread, msg string) { fmt.Fprintln(out, msg) },
		Load: func(*starlark.Thread, string) (starlark.StringDict, error) {
			return nil, errors.New("load() is not supported; copy the functions into build.envd for now")
		},
		OnMaxSteps: func(t *starlark.Thread) {
			s.outOfSteps = max
			t.Cancel("build file ran too long")
		},
	}
	thread.SetMaxExecutionSteps(max)
	thread.SetLocal(stateKey, s)
	return thread
}

// lookup finds the build function among the file's globals.
func (s *state) lookup(globals starlark.StringDict, fn string) (starlark.Callable, error) {
	v, ok := globals[fn]
	if f, isFunc := v.(*starlark.Function); ok && isFunc {
		for i := 0; i < f.NumParams(); i++ {
			if f.ParamDefault(i) == nil {
				name, pos := f.Param(i)
				return nil, ir.Errorf(s.pos(pos), fmt.Sprintf("envd calls %s() with no arguments: give %s a default (%s=...) or remove it", fn, name, name),
					"%s() must take no arguments, but parameter %q has no default", fn, name)
			}
		}
		return f, nil
	}
	var funcs []string
	for name, v := range globals {
		if _, ok := v.(*starlark.Function); ok {
			funcs = append(funcs, name)
		}
	}
	sort.Strings(funcs)
	if ok {
		return nil, ir.Errorf(ir.Pos{File: s.path}, fmt.Sprintf("define def %s(): ... instead", fn),
			"%q is a value of type %s, not a function", fn, v.Type())
	}
	hint := s.path + " defines no functions"
	if len(funcs) > 0 {
		hint = fmt.Sprintf("%s defines %s", s.path, quoteAll(funcs))
		if near := nearest(fn, funcs); near != "" {
			hint = fmt.Sprintf("did you mean %q? %s", near, hint)
		}
	}
	return nil, ir.Errorf(ir.Pos{File: s.path}, hint,
		"no function %q; define def %s(): ... or pass -f %s:NAME", fn, fn, s.path)
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
