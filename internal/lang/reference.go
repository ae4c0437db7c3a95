package lang

import (
	"fmt"
	"strings"
)

// Reference renders every builtin as Markdown: what `envd reference` prints
// and the generated part of docs/build-file.md.
func Reference() string {
	var b strings.Builder
	b.WriteString("## Functions\n\n")
	for _, f := range builtinsIn("") {
		b.WriteString(f.Markdown())
	}
	for _, m := range Modules() {
		fmt.Fprintf(&b, "## %s\n\n%s\n\n", m.Name, m.Doc)
		for _, f := range builtinsIn(m.Name) {
			b.WriteString(f.Markdown())
		}
	}
	return b.String()
}

func builtinsIn(module string) []Builtin {
	var out []Builtin
	for _, b := range Builtins() {
		if b.Module == module {
			out = append(out, b)
		}
	}
	return out
}

// Markdown renders one builtin: its signature, what it does, its parameters.
func (b Builtin) Markdown() string {
	var s strings.Builder
	fmt.Fprintf(&s, "### %s\n\n```python\n%s\n```\n\n%s", b.Name, b.Signature(), b.Doc)
	if b.Returns != "" {
		fmt.Fprintf(&s, " Returns %s.", article(b.Returns))
	}
	s.WriteString("\n\n")
	if len(b.Params) == 0 {
		return s.String()
	}
	s.WriteString("| parameter | type | default | |\n|---|---|---|---|\n")
	for _, p := range b.Params {
		name := "`" + p.Name + "`"
		for _, a := range p.Aliases {
			name += " or `" + a + "`"
		}
		def := "required"
		switch {
		case p.Default != "":
			def = "`" + p.Default + "`"
		case !p.Required:
			def = "optional"
		}
		fmt.Fprintf(&s, "| %s | `%s` | %s | %s |\n", name, p.Type, def, strings.ReplaceAll(p.Doc, "|", `\|`))
	}
	s.WriteString("\n")
	return s.String()
}

func article(typ string) string {
	switch typ {
	case "Any":
		return "a module: use its functions as NAME.function(...)"
	case "str":
		return "a string"
	}
	return typ
}
