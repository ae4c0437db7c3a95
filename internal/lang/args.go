package lang

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// kind is what a parameter accepts. Each kind turns a Starlark value into a
// plain, JSON-able Go value, so builtins never handle Starlark types and every
// type error reads the same way.
type kind string

const (
	kindStr       kind = "str"      // string
	kindStrOrNone kind = "str|none" // string, or None meaning ""
	kindBool      kind = "bool"     // bool
	kindInt       kind = "int"      // int; a string of digits is accepted too
	kindStrs      kind = "strs"     // []string; a single string is a list of one
	kindArgvs     kind = "argvs"    // [][]string: a list of argv lists
	kindCommands  kind = "commands" // [][]string: argv lists, or shell strings run with sh -c
	kindStrDict   kind = "dict"     // map[string]string; int values are written in decimal
)

var kinds = map[kind]bool{kindStr: true, kindStrOrNone: true, kindBool: true, kindInt: true,
	kindStrs: true, kindArgvs: true, kindCommands: true, kindStrDict: true}

// param is one parameter of a builtin, declared as
//
//	name[|alias...][?]:kind[=default] [# doc]
//
// A trailing ? marks it optional; aliases are older names accepted as
// keywords; default is a Starlark literal (it is also what the reference and
// the editor stubs show); doc is one line for the reference.
type param struct {
	name     string
	aliases  []string
	optional bool
	kind     kind
	def      string // the default as written, "" when the handler decides
	defValue any    // def converted to the kind, nil when def is ""
	doc      string
}

// parseParams reads parameter declarations. They are constants in this
// package, so a malformed one is a programming error caught by every test.
func parseParams(builtin string, specs []string) []param {
	var ps []param
	for _, spec := range specs {
		decl, doc, _ := strings.Cut(spec, "#")
		decl, def, hasDef := strings.Cut(strings.TrimSpace(decl), "=")
		names, k, ok := strings.Cut(decl, ":")
		if !ok {
			panic(fmt.Sprintf("%s: parameter %q has no kind", builtin, spec))
		}
		p := param{kind: kind(k), doc: strings.TrimSpace(doc), def: def}
		names, p.optional = strings.CutSuffix(names, "?")
		all := strings.Split(names, "|")
		p.name, p.aliases = all[0], all[1:]
		if !kinds[p.kind] {
			panic(fmt.Sprintf("%s: parameter %q has unknown kind", builtin, spec))
		}
		if hasDef {
			p.defValue = parseDefault(builtin, p)
		}
		ps = append(ps, p)
	}
	return ps
}

// parseDefault evaluates a declared default and converts it like an argument.
func parseDefault(builtin string, p param) any {
	if !p.optional {
		panic(fmt.Sprintf("%s: required parameter %q has a default", builtin, p.name))
	}
	v, err := starlark.EvalOptions(&syntax.FileOptions{}, &starlark.Thread{}, "default", p.def, nil)
	if err == nil {
		var x any
		if x, err = convert(p, v); err == nil {
			return x
		}
	}
	panic(fmt.Sprintf("%s: default of %q: %v", builtin, p.name, err))
}

// args holds the arguments of one call, converted to Go values and keyed by
// canonical parameter name. Only arguments the user gave are present; None
// given for an optional parameter counts as not given (its default applies).
type args map[string]any

func (a args) str(name, def string) string {
	if v, ok := a[name].(string); ok {
		return v
	}
	return def
}

func (a args) boolean(name string, def bool) bool {
	if v, ok := a[name].(bool); ok {
		return v
	}
	return def
}

func (a args) integer(name string, def int) int {
	if v, ok := a[name].(int); ok {
		return v
	}
	return def
}

func (a args) strs(name string) []string {
	v, _ := a[name].([]string)
	return v
}

func (a args) argvs(name string) [][]string {
	v, _ := a[name].([][]string)
	return v
}

func (a args) dict(name string) map[string]string {
	v, _ := a[name].(map[string]string)
	return v
}

// unpack binds positional and keyword arguments to params the way Python
// does, and converts each value to its kind.
func (c *call) unpack(params []param, pos starlark.Tuple, kwargs []starlark.Tuple) (args, error) {
	given := map[string]starlark.Value{}
	if len(pos) > len(params) {
		return nil, c.argErr(params, "got %d positional arguments, want at most %d", len(pos), len(params))
	}
	for i, v := range pos {
		given[params[i].name] = v
	}
	for _, kv := range kwargs {
		key, _ := starlark.AsString(kv[0])
		p := findParam(params, key)
		if p == nil {
			msg := fmt.Sprintf("unexpected keyword argument %q", key)
			if near := nearest(key, paramNames(params, true)); near != "" {
				msg += fmt.Sprintf("; did you mean %q?", near)
			}
			return nil, c.argErr(params, "%s", msg)
		}
		if _, dup := given[p.name]; dup {
			return nil, c.argErr(params, "got two values for argument %q", p.name)
		}
		given[p.name] = kv[1]
	}

	out := args{}
	for _, p := range params {
		v, ok := given[p.name]
		if ok && v == starlark.None && p.optional && p.kind != kindStrOrNone {
			ok = false
		}
		if !ok {
			if !p.optional {
				return nil, c.argErr(params, "missing required argument %q", p.name)
			}
			if p.defValue != nil {
				out[p.name] = p.defValue
			}
			continue
		}
		x, err := convert(p, v)
		if err != nil {
			return nil, c.argErr(params, "%v", err)
		}
		out[p.name] = x
	}
	return out, nil
}

// argErr reports a mistake in the arguments of a call, with its usage.
func (c *call) argErr(params []param, format string, a ...any) error {
	return c.errorf("usage: "+usage(c.name, params), "%s: %s", c.name, fmt.Sprintf(format, a...))
}

// usage renders a builtin's signature, e.g. install.cuda(version, cudnn="8").
func usage(name string, params []param) string {
	var ps []string
	for _, p := range params {
		switch {
		case p.def != "":
			ps = append(ps, p.name+"="+p.def)
		case p.optional:
			ps = append(ps, p.name+"=...")
		default:
			ps = append(ps, p.name)
		}
	}
	return name + "(" + strings.Join(ps, ", ") + ")"
}

// reorder returns params with the named ones first, in that order.
func reorder(params []param, names []string) []param {
	var out []param
	for _, n := range names {
		if p := findParam(params, n); p != nil {
			out = append(out, *p)
		}
	}
	for _, p := range params {
		if !slices.Contains(names, p.name) {
			out = append(out, p)
		}
	}
	return out
}

func findParam(params []param, key string) *param {
	for i, p := range params {
		if p.name == key {
			return &params[i]
		}
		for _, a := range p.aliases {
			if a == key {
				return &params[i]
			}
		}
	}
	return nil
}

func paramNames(params []param, withAliases bool) []string {
	var names []string
	for _, p := range params {
		names = append(names, p.name)
		if withAliases {
			names = append(names, p.aliases...)
		}
	}
	return names
}

// convert turns v into the Go value of p's kind, or says what was expected.
func convert(p param, v starlark.Value) (any, error) {
	name := p.name
	switch p.kind {
	case kindStr:
		if s, ok := starlark.AsString(v); ok {
			return s, nil
		}
		return nil, fmt.Errorf("%s must be a string, got %s", name, v.Type())
	case kindStrOrNone:
		if v == starlark.None {
			return "", nil
		}
		if s, ok := starlark.AsString(v); ok {
			return s, nil
		}
		return nil, fmt.Errorf("%s must be a string or None, got %s", name, v.Type())
	case kindBool:
		if b, ok := v.(starlark.Bool); ok {
			return bool(b), nil
		}
		return nil, fmt.Errorf("%s must be True or False, got %s", name, v.Type())
	case kindInt:
		return toInt(name, v)
	case kindStrs:
		if s, ok := starlark.AsString(v); ok {
			return []string{s}, nil
		}
		return toStrings(name, v, "a list of strings")
	case kindArgvs, kindCommands:
		return toCommands(name, v, p.kind == kindCommands)
	case kindStrDict:
		return toStrDict(name, v)
	}
	return nil, fmt.Errorf("%s: unknown parameter kind %q", name, p.kind)
}

func toInt(name string, v starlark.Value) (int, error) {
	var i int
	if err := starlark.AsInt(v, &i); err == nil {
		return i, nil
	}
	if _, ok := v.(starlark.Int); ok {
		return 0, fmt.Errorf("%s: %s is out of range", name, v)
	}
	// Some envd versions documented ports as strings: accept "8888".
	if s, ok := starlark.AsString(v); ok {
		if i, err := strconv.Atoi(s); err == nil {
			return i, nil
		}
		return 0, fmt.Errorf("%s must be an integer, got string %q", name, s)
	}
	return 0, fmt.Errorf("%s must be an integer, got %s", name, v.Type())
}

// elements returns the items of a list or tuple.
func elements(v starlark.Value) ([]starlark.Value, bool) {
	switch x := v.(type) {
	case *starlark.List:
		out := make([]starlark.Value, x.Len())
		for i := range out {
			out[i] = x.Index(i)
		}
		return out, true
	case starlark.Tuple:
		return x, true
	}
	return nil, false
}

func toStrings(name string, v starlark.Value, want string) ([]string, error) {
	items, ok := elements(v)
	if !ok {
		return nil, fmt.Errorf("%s must be %s, got %s", name, want, v.Type())
	}
	out := []string{}
	for i, x := range items {
		s, ok := starlark.AsString(x)
		if !ok {
			return nil, fmt.Errorf("%s[%d] must be a string, got %s", name, i, x.Type())
		}
		out = append(out, s)
	}
	return out, nil
}

// toCommands reads a list of commands. Each is an argv list; with shell, a
// string is also accepted and run as sh -c STRING (envd's runtime.init took
// shell strings).
func toCommands(name string, v starlark.Value, shell bool) ([][]string, error) {
	const example = `[["python3", "-m", "http.server"]]`
	items, ok := elements(v)
	if !ok {
		return nil, fmt.Errorf("%s must be a list of commands, each a list of strings such as %s, got %s", name, example, v.Type())
	}
	out := [][]string{}
	for i, x := range items {
		if s, ok := starlark.AsString(x); ok {
			if !shell {
				return nil, fmt.Errorf("%s[%d] must be a list of strings, got string %q; write each command as a list, e.g. %s", name, i, s, example)
			}
			out = append(out, []string{"sh", "-c", s})
			continue
		}
		argv, err := toStrings(fmt.Sprintf("%s[%d]", name, i), x, "a list of strings")
		if err != nil {
			return nil, err
		}
		out = append(out, argv)
	}
	return out, nil
}

func toStrDict(name string, v starlark.Value) (map[string]string, error) {
	d, ok := v.(*starlark.Dict)
	if !ok {
		return nil, fmt.Errorf("%s must be a dict of strings, got %s", name, v.Type())
	}
	out := map[string]string{}
	for _, kv := range d.Items() {
		k, ok := starlark.AsString(kv[0])
		if !ok {
			return nil, fmt.Errorf("%s keys must be strings, got %s", name, kv[0].Type())
		}
		switch x := kv[1].(type) {
		case starlark.String:
			out[k] = string(x)
		case starlark.Int:
			out[k] = x.String()
		default:
			return nil, fmt.Errorf("%s[%q] must be a string, got %s", name, k, kv[1].Type())
		}
	}
	return out, nil
}
