// Package lang runs a build.envd file (Starlark, a Python dialect) and
// returns the environment it declares as an ir.Environment.
//
// The file is executed once, so that its top level defines functions; then
// the build function (by default "build") is called with no arguments. The
// builtins (base, install.*, config.*, runtime.*, io.*, data.*, shell, run,
// git_config) only record what they are asked for, with the position of each
// call; include() runs other .envd files as modules (include.go), pinned in
// envd.lock when they come from git (lock.go, git.go). Every mistake a user
// can make comes back as an *ir.Error that starts with FILE:LINE:COL, says
// what is wrong and how to fix it.
//
// The tables of builtins (globals in state.go, the modules in install.go,
// config.go, ...) are also the source of `envd reference`, docs/build-file.md
// and the editor stubs in stubs/ (api.go).
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
	// Files lists every file read: the build file, included modules and,
	// when a module comes from git, envd.lock.
	Files []string
}

// Loader runs build files. The zero value is ready to use.
type Loader struct {
	// Print receives the output of print(); nil means os.Stderr.
	Print io.Writer
	// MaxSteps overrides DefaultMaxSteps when non-zero.
	MaxSteps uint64
	// MaxMemory overrides DefaultMaxMemory (bytes) when non-zero.
	MaxMemory uint64
	// Abort, when set, is called (from another goroutine) with the error if
	// the load passes twice MaxMemory inside one builtin call that the
	// memory bound cannot interrupt; it should end the process. Without
	// it, Load returns once that call does.
	Abort func(error)
	// UpdateModules moves the pin of every git include to the current commit
	// of its ref and rewrites envd.lock (envd build --update-modules).
	// Without it a pinned module is used as pinned, from the cache when it
	// is there, without the network.
	UpdateModules bool
	// Offline never fetches: every git include must be pinned and cached.
	Offline bool
	// ModuleCache holds git modules; "" means xdg.CacheDir()/modules.
	ModuleCache string
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
	s := newState(filename, l)
	thread := s.thread()
	defer s.watchMemory(thread)()
	globals, err := s.exec(thread, filename, src)
	if err != nil {
		return nil, err
	}
	build, err := s.lookup(globals, fn)
	if err != nil {
		return nil, err
	}
	if _, err := starlark.Call(thread, build, nil, nil); err != nil {
		return nil, s.evalError(err)
	}

	env := s.finish(s.pos(build.Position()))
	if env.PipOptions, err = mergePipCalls(s.pipCalls, env.Jupyter); err != nil {
		return nil, err
	}
	if err := env.ApplyCUDA(); err != nil {
		return nil, err
	}
	if err := env.Validate(); err != nil {
		return nil, err
	}
	if err := s.writeLock(); err != nil {
		return nil, err
	}
	return &Result{Env: env, Files: s.read}, nil
}

// thread makes the Starlark thread: print goes to the loader's writer, a
// step budget (shared with included modules) stops endless loops, and
// load() points to include().
func (s *state) thread() *starlark.Thread {
	out := s.opts.Print
	if out == nil {
		out = os.Stderr
	}
	max := s.opts.MaxSteps
	if max == 0 {
		max = DefaultMaxSteps
	}
	thread := &starlark.Thread{
		Name:  s.path,
		Print: func(_ *starlark.Thread, msg string) { fmt.Fprintln(out, msg) },
		Load: func(*starlark.Thread, string) (starlark.StringDict, error) {
			return nil, errors.New(`load() is not supported; use lib = include(path="lib.envd") and call lib.NAME(...)`)
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
func (s *state) lookup(globals starlark.StringDict, fn string) (*starlark.Function, error) {
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
