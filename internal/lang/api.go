package lang

import "fmt"

// The builtins as data, for `envd reference`, docs/build-file.md and the
// editor stubs in stubs/. All three come from the tables the interpreter
// runs, so they cannot drift from it; TestGeneratedFiles checks the
// committed files.
//
//go:generate go test -run TestGeneratedFiles -update .

// Builtin describes one builtin of build files.
type Builtin struct {
	Name    string // "install.python_packages"
	Module  string // "install"; "" for base, run, include, ...
	Doc     string
	Params  []Param
	Returns string // a Python type; "" returns None
	// Value is a constant's value (data.path.huggingface is a string, not a
	// function); "" for functions.
	Value string

	signature string
	altOrder  []string // member.altOrder, for a second overload in the stubs
}

// Param is one parameter of a builtin.
type Param struct {
	Name string
	// Aliases are older names accepted as keywords (io.copy's src, dest).
	Aliases  []string
	Kind     string // as declared: str, strs, int, ...
	Type     string // the Python type, e.g. "Union[str, Sequence[str]]"
	Required bool
	// Default is a Python literal, or "" when Doc explains it.
	Default string
	Doc     string
}

// Module is a namespace of builtins.
type Module struct {
	Name, Doc string
}

// Modules lists the namespaces in reference order.
func Modules() []Module {
	var out []Module
	for _, m := range modules {
		out = append(out, Module{Name: m.name, Doc: m.doc})
	}
	return out
}

// Builtins lists every builtin: the global ones, then each module's, in the
// order they are declared.
func Builtins() []Builtin {
	var out []Builtin
	for _, g := range globals {
		out = append(out, describe("", g))
	}
	for _, m := range modules {
		for _, f := range m.decl {
			if f.sub == nil {
				out = append(out, describe(m.name, f))
				continue
			}
			// A namespace of constants: each is listed under the module.
			for _, k := range f.sub.decl {
				name := f.sub.name + "." + k.name
				out = append(out, Builtin{Name: name, Module: m.name, Doc: k.doc, Value: k.value,
					signature: fmt.Sprintf("%s = %q", name, k.value)})
			}
		}
	}
	return out
}

func describe(module string, m member) Builtin {
	b := Builtin{Name: m.name, Module: module, Doc: m.doc, Returns: m.returns, altOrder: m.altOrder}
	if module != "" {
		b.Name = module + "." + m.name
	}
	params := parseParams(b.Name, m.params)
	b.signature = usage(b.Name, params)
	for _, p := range params {
		b.Params = append(b.Params, Param{
			Name: p.name, Aliases: p.aliases, Kind: string(p.kind), Type: pythonTypes[p.kind],
			Required: !p.optional, Default: p.def, Doc: p.doc,
		})
	}
	return b
}

// pythonTypes are the Python types of the parameter kinds.
var pythonTypes = map[kind]string{
	kindStr:       "str",
	kindStrOrNone: "Optional[str]",
	kindBool:      "bool",
	kindInt:       "int",
	kindStrs:      "Union[str, Sequence[str]]",
	kindArgvs:     "Sequence[Sequence[str]]",
	kindCommands:  "Sequence[Union[str, Sequence[str]]]",
	kindStrDict:   "Dict[str, Union[str, int]]",
}

// Signature renders the call with its defaults, e.g.
// install.cuda(version, cudnn="8"), as error messages show it; for a
// constant, its value: data.path.dgl = "/home/envd/.dgl".
func (b Builtin) Signature() string { return b.signature }
