package lang

import (
	"errors"
	"fmt"
	"strings"
	"unicode"

	"go.starlark.net/resolve"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"envd.dev/envd/internal/ir"
)

// syntaxError reports a parse error, with a hint when the line uses Python
// that Starlark lacks.
func syntaxError(filename string, err error, src []byte) error {
	var se syntax.Error
	if !errors.As(err, &se) {
		return ir.Errorf(ir.Pos{File: filename}, "", "%v", err)
	}
	pos := ir.Pos{File: se.Pos.Filename(), Line: int(se.Pos.Line), Col: int(se.Pos.Col)}
	return ir.Errorf(pos, pythonHint(lineAt(src, int(se.Pos.Line))), "syntax error: %s", se.Msg)
}

func lineAt(src []byte, n int) string {
	lines := strings.Split(string(src), "\n")
	if n < 1 || n > len(lines) {
		return ""
	}
	return lines[n-1]
}

// pythonHint explains the Python features build files most often try.
func pythonHint(line string) string {
	first, _, _ := strings.Cut(strings.TrimSpace(line), " ")
	switch strings.TrimSuffix(first, ":") {
	case "import", "from":
		return "build.envd is Starlark, a Python dialect without import: envd's functions (base, install, config, runtime, io, ...) are always there"
	case "class":
		return "build.envd is Starlark, a Python dialect without classes: use functions and dicts"
	case "try", "except", "finally", "raise":
		return `build.envd is Starlark, a Python dialect without exceptions: use fail("message") to stop with an error`
	case "with", "async", "await", "yield", "global", "nonlocal", "del":
		return "build.envd is Starlark, a Python dialect without " + first
	}
	if strings.Contains(line, `f"`) || strings.Contains(line, `f'`) {
		return `Starlark has no f-strings: use "%s" % x or "{}".format(x)`
	}
	return "build files use Python's syntax: check the brackets, quotes, colons and indentation here and on the line before"
}

// resolveErrors reports names the file uses but nothing defines, with a
// suggestion: a misspelt builtin, global or module member.
func (s *state) resolveErrors(err error, f *syntax.File) error {
	var list resolve.ErrorList
	if !errors.As(err, &list) {
		return ir.Errorf(ir.Pos{File: f.Path}, "", "%v", err)
	}
	candidates := append(predeclared.Keys(), starlark.Universe.Keys()...)
	if m, ok := f.Module.(*resolve.Module); ok {
		for _, b := range m.Globals {
			candidates = append(candidates, b.First.Name)
		}
	}
	var errs []error
	for _, e := range list {
		pos := ir.Pos{File: e.Pos.Filename(), Line: int(e.Pos.Line), Col: int(e.Pos.Col)}
		name, ok := strings.CutPrefix(e.Msg, "undefined: ")
		if !ok {
			errs = append(errs, ir.Errorf(pos, "", "%s", e.Msg))
			continue
		}
		// Starlark's own hint only knows the file's names; ours adds envd's.
		name, local, _ := strings.Cut(name, " (did you mean ")
		local = strings.TrimSuffix(local, "?)")
		msg := "undefined: " + name
		if full := memberOf(name); full != "" {
			msg += fmt.Sprintf("; did you mean %q?", full)
		} else if near := nearest(name, append(candidates, local)); near != "" {
			msg += fmt.Sprintf("; did you mean %q?", near)
		}
		errs = append(errs, ir.Errorf(pos,
			"envd provides base, shell, run, git_config, include and the modules install, config, runtime, io and data; define anything else with def or =", "%s", msg))
	}
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}

// memberOf finds a module member used without its module, e.g.
// python_packages for install.python_packages.
func memberOf(name string) string {
	for _, m := range modules {
		if _, ok := m.members[name]; ok {
			return m.name + "." + name
		}
	}
	return ""
}

// evalError positions an error from running the file at the innermost frame
// in the user's file: a builtin's call, or the failing expression.
func (s *state) evalError(err error) error {
	var stack starlark.CallStack
	msg := err.Error()
	var ee *starlark.EvalError
	if errors.As(err, &ee) {
		stack, msg = ee.CallStack, ee.Msg
	}
	pos, fn := s.innermostFrame(stack)

	var ie *ir.Error
	if errors.As(err, &ie) {
		if ie.Pos.File != "" {
			return ie
		}
		e := *ie
		e.Pos = pos
		return &e
	}
	hint := ""
	var me *memoryError
	switch {
	case errors.As(err, &me):
		msg, hint = me.msg, memoryHint
	case s.outOfMemory.Load() > 0:
		return s.memoryExceeded(pos, fn)
	case s.outOfSteps > 0:
		msg = fmt.Sprintf("build file ran too long (more than %d steps)", s.outOfSteps)
		if fn != "" && fn != "<toplevel>" {
			msg += fmt.Sprintf(" in %s()", fn)
		}
		hint = "look for a loop that never ends, or a function that calls itself forever"
	case msg == "Starlark stack overflow":
		hint = "a function calls itself without end"
	}
	return &ir.Error{Pos: pos, Msg: msg, Hint: hint}
}

// Nearest returns the candidate closest to x, ignoring case and
// underscores, or "" when none is within half of x's length: envd's "did
// you mean".
func Nearest(x string, candidates []string) string { return nearest(x, candidates) }

func nearest(x string, candidates []string) string {
	fold := func(s string) string {
		return strings.Map(func(r rune) rune {
			if r == '_' {
				return -1
			}
			return unicode.ToLower(r)
		}, s)
	}
	fx := fold(x)
	best, bestD := "", (len(fx)+1)/2 // allow up to 50% typos
	for _, c := range candidates {
		if c == "" || c == x {
			continue
		}
		if d := levenshtein(fx, fold(c)); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

func levenshtein(a, b string) int {
	x, y := []rune(a), []rune(b)
	row := make([]int, len(y)+1)
	for j := range row {
		row[j] = j
	}
	for i := 1; i <= len(x); i++ {
		prev := row[0]
		row[0] = i
		for j := 1; j <= len(y); j++ {
			cur := row[j]
			cost := 1
			if x[i-1] == y[j-1] {
				cost = 0
			}
			row[j] = min(row[j]+1, row[j-1]+1, prev+cost)
			prev = cur
		}
	}
	return row[len(y)]
}

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}
