package lang

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Stubs renders the builtins as a Python type stub, __builtins__.pyi: with
// it, pyright and Pylance complete and check build.envd files (see
// docs/build-file.md, "Editor support").
func Stubs() string {
	var b strings.Builder
	b.WriteString(`# Type stubs for envd's build files (build.envd, *.envd).
# Generated from envd's builtins by ` + "`envd reference --format pyi`" + `; do not edit.
# Editor set-up: docs/build-file.md, "Editor support".
from typing import Any, Dict, NoReturn, Optional, Sequence, Union, overload

def fail(*args: object, sep: str = " ") -> NoReturn:
    """Stop the build with an error (a Starlark builtin)."""
    ...
`)
	for _, f := range builtinsIn("") {
		b.WriteString("\n")
		writeStub(&b, f, "")
	}
	for _, m := range modules {
		// Namespaces of constants (data.path) are classes of their own.
		var subs []member
		for _, f := range m.decl {
			if f.sub != nil {
				subs = append(subs, f)
				writeConstants(&b, f.sub)
			}
		}
		fmt.Fprintf(&b, "\nclass %s:\n    %s\n", className(m.name), docstring(m.doc, nil, "    "))
		for _, f := range builtinsIn(m.name) {
			if f.Value != "" {
				continue // in the namespace's class
			}
			b.WriteString("\n")
			writeStub(&b, f, "    ")
		}
		for _, f := range subs {
			fmt.Fprintf(&b, "\n    %s: %s\n    %s\n", f.name, className(f.sub.name), docstring(f.doc, nil, "    "))
		}
		fmt.Fprintf(&b, "\n%s: %s\n", m.name, className(m.name))
	}
	return b.String()
}

// className is the stub class of a module: _Install, _DataPath.
func className(module string) string {
	var b strings.Builder
	b.WriteString("_")
	for _, part := range strings.Split(module, ".") {
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
}

// writeConstants writes a namespace of string constants as a class.
func writeConstants(b *strings.Builder, m *module) {
	fmt.Fprintf(b, "\nclass %s:\n    %s\n", className(m.name), docstring(m.doc, nil, "    "))
	for _, k := range m.decl {
		fmt.Fprintf(b, "\n    %s: str\n    %s\n", k.name, docstring(k.doc+" Value: "+strconv.Quote(k.value)+".", nil, "    "))
	}
}

// writeStub writes one function; builtins whose parameters have older names
// get one overload per naming (io.copy(src=..., dest=...)), and one with a
// second positional order gets an overload in it (base(os, language)).
func writeStub(b *strings.Builder, f Builtin, indent string) {
	name := f.Name[strings.LastIndex(f.Name, ".")+1:]
	returns := f.Returns
	if returns == "" {
		returns = "None"
	}
	variants := aliasVariants(f.Params)
	positional := 1 // variants[0] and a reordered one take positional arguments
	if f.altOrder != nil {
		variants = append(variants[:1], append([][]Param{reorderParams(f.Params, f.altOrder)}, variants[1:]...)...)
		positional = 2
	}
	for i, params := range variants {
		if i > 0 {
			b.WriteString("\n")
		}
		if len(variants) > 1 {
			b.WriteString(indent + "@overload\n")
		}
		if indent != "" {
			b.WriteString(indent + "@staticmethod\n")
		}
		fmt.Fprintf(b, "%sdef %s(%s) -> %s:\n", indent, name, stubParams(params, i >= positional), returns)
		fmt.Fprintf(b, "%s    %s\n%s    ...\n", indent, docstring(f.Doc, params, indent+"    "), indent)
	}
}

// reorderParams returns params with the named ones first, in that order.
func reorderParams(params []Param, names []string) []Param {
	var out []Param
	for _, n := range names {
		for _, p := range params {
			if p.Name == n {
				out = append(out, p)
			}
		}
	}
	for _, p := range params {
		if !slices.Contains(names, p.Name) {
			out = append(out, p)
		}
	}
	return out
}

// aliasVariants returns the parameters under their names, then under each
// set of older names.
func aliasVariants(params []Param) [][]Param {
	out := [][]Param{params}
	for i := 0; ; i++ {
		var v []Param
		renamed := false
		for _, p := range params {
			if i < len(p.Aliases) {
				p.Name, renamed = p.Aliases[i], true
			}
			v = append(v, p)
		}
		if !renamed {
			return out
		}
		out = append(out, v)
	}
}

func stubParams(params []Param, keywordOnly bool) string {
	var ps []string
	if keywordOnly {
		ps = append(ps, "*")
	}
	for _, p := range params {
		s := p.Name + ": " + p.Type
		switch {
		case p.Default != "":
			s += " = " + p.Default
		case p.Kind == string(kindStrOrNone):
			s += " = None"
		case !p.Required:
			s += " = ..."
		}
		ps = append(ps, s)
	}
	return strings.Join(ps, ", ")
}

func docstring(doc string, params []Param, indent string) string {
	var b strings.Builder
	esc := strings.NewReplacer(`\`, `\\`).Replace
	b.WriteString(`"""` + esc(doc))
	var args []string
	for _, p := range params {
		if p.Doc != "" {
			args = append(args, fmt.Sprintf("%s    %s: %s", indent, p.Name, esc(p.Doc)))
		}
	}
	if len(args) > 0 {
		fmt.Fprintf(&b, "\n\n%sArgs:\n%s\n%s", indent, strings.Join(args, "\n"), indent)
	} else if strings.HasSuffix(doc, `"`) {
		b.WriteString(" ") // """ right after a quote would end the string early
	}
	b.WriteString(`"""`)
	return b.String()
}
