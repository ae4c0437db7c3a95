package lang

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"envd.dev/envd/internal/ir"
)

const (
	cpuIndex  = "https://download.pytorch.org/whl/cpu"
	cu118     = "https://download.pytorch.org/whl/cu118"
	dglWheels = "https://data.dgl.ai/wheels/repo.html"
)

// pp is statement i's install.python_packages(name=[...]) call: entries
// are written as Go strings quoted for Starlark.
func pp(entries ...string) string {
	var q []string
	for _, e := range entries {
		q = append(q, `"`+e+`"`)
	}
	return "install.python_packages(name=[" + strings.Join(q, ", ") + "])"
}

// ppCol is the column of entry i in pp(entries...) at the statement's
// indentation (build(...) puts statements at column 5).
func ppCol(entries []string, i int) int {
	col := 5 + len("install.python_packages(name=[")
	for _, e := range entries[:i] {
		col += len(e) + len(`"", `)
	}
	return col
}

// Each form envd v1 users write, alone, after a name, with =, several in
// one call, across entries and across calls, and the IR it makes.
func TestPipOptionsInEntries(t *testing.T) {
	tests := []struct {
		name  string
		stmts []string
		names []string
		want  *ir.PipOptions // Pos checked apart
	}{
		{"no options", []string{pp("numpy>=1.26,<2", "torch")}, []string{"numpy>=1.26,<2", "torch"}, nil},
		{"extra index alone", []string{pp("--extra-index-url "+cu118, "torch")}, []string{"torch"},
			&ir.PipOptions{ExtraIndexURLs: []string{cu118}}},
		{"index after a name", []string{pp("torch --index-url " + cpuIndex)}, []string{"torch"},
			&ir.PipOptions{IndexURL: cpuIndex}},
		{"find-links short", []string{pp("dgl-cu113 -f " + dglWheels)}, []string{"dgl-cu113"},
			&ir.PipOptions{FindLinks: []string{dglWheels}}},
		{"find-links long with =", []string{pp("dgl-cu113 --find-links=" + dglWheels)}, []string{"dgl-cu113"},
			&ir.PipOptions{FindLinks: []string{dglWheels}}},
		{"pre alone", []string{pp("--pre", "jax")}, []string{"jax"}, &ir.PipOptions{Pre: true}},
		{"-i then a name", []string{pp("-i " + cpuIndex + " torch")}, []string{"torch"}, &ir.PipOptions{IndexURL: cpuIndex}},
		{"index with =", []string{pp("torch --index-url=" + cpuIndex)}, []string{"torch"}, &ir.PipOptions{IndexURL: cpuIndex}},
		{"no-deps", []string{pp("mylib --no-deps")}, []string{"mylib"}, &ir.PipOptions{NoDeps: true}},
		{"upgrade changes nothing", []string{pp("numpy --upgrade", "-U six")}, []string{"numpy", "six"}, nil},
		{"trusted host", []string{pp("mylib --extra-index-url http://pypi.lan:8080/simple --trusted-host pypi.lan:8080")}, []string{"mylib"},
			&ir.PipOptions{ExtraIndexURLs: []string{"http://pypi.lan:8080/simple"}, TrustedHosts: []string{"pypi.lan:8080"}}},
		{"several in one entry", []string{pp("torch==2.1.0+cpu -f https://download.pytorch.org/whl/torch_stable.html --pre --trusted-host download.pytorch.org")},
			[]string{"torch==2.1.0+cpu"},
			&ir.PipOptions{FindLinks: []string{"https://download.pytorch.org/whl/torch_stable.html"}, TrustedHosts: []string{"download.pytorch.org"}, Pre: true}},
		{"a version with spaces, then an option", []string{pp("numpy >= 1.26 --pre")}, []string{"numpy >= 1.26"}, &ir.PipOptions{Pre: true}},
		{"names on both sides", []string{pp("torch --index-url " + cpuIndex + " torchvision")}, []string{"torch", "torchvision"},
			&ir.PipOptions{IndexURL: cpuIndex}},
		{"value in the next entry", []string{pp("torch", "--index-url", cpuIndex, "torchaudio")}, []string{"torch", "torchaudio"},
			&ir.PipOptions{IndexURL: cpuIndex}},
		{"several entries of one call", []string{pp("torch", "--extra-index-url "+cu118, "--find-links "+dglWheels, "--pre", "dgl")},
			[]string{"torch", "dgl"}, &ir.PipOptions{ExtraIndexURLs: []string{cu118}, FindLinks: []string{dglWheels}, Pre: true}},
		{"the same option twice", []string{pp("a -f "+dglWheels, "b -f "+dglWheels)}, []string{"a", "b"}, &ir.PipOptions{FindLinks: []string{dglWheels}}},
		// Across calls: one resolve. The index replaces the default only
		// when every call that installs something gives it.
		{"every call gives the index", []string{pp("torch --index-url " + cpuIndex), pp("torchvision -i " + cpuIndex)},
			[]string{"torch", "torchvision"}, &ir.PipOptions{IndexURL: cpuIndex}},
		{"another call without it", []string{pp("numpy", "pandas"), pp("torch --index-url " + cpuIndex)},
			[]string{"numpy", "pandas", "torch"}, &ir.PipOptions{ExtraIndexURLs: []string{cpuIndex}}},
		{"a requirements file without it", []string{`install.python_packages(requirements="requirements.txt")`, pp("torch --index-url " + cpuIndex)},
			[]string{"torch"}, &ir.PipOptions{ExtraIndexURLs: []string{cpuIndex}}},
		{"jupyter needs the default index", []string{`config.jupyter()`, pp("torch --index-url " + cpuIndex)},
			[]string{"torch"}, &ir.PipOptions{ExtraIndexURLs: []string{cpuIndex}}},
		{"two calls, two indexes", []string{pp("torch --index-url " + cpuIndex), pp("jax --index-url " + cu118)},
			[]string{"torch", "jax"}, &ir.PipOptions{ExtraIndexURLs: []string{cpuIndex, cu118}}},
		{"options of a call without packages", []string{pp("--pre"), pp("jax")}, []string{"jax"}, &ir.PipOptions{Pre: true}},
		{"no-deps in every call", []string{pp("a --no-deps"), pp("--no-deps", "b")}, []string{"a", "b"}, &ir.PipOptions{NoDeps: true}},
		{"config.pip_index stays", []string{`config.pip_index(url="https://mirror.example/simple")`, pp("torch --index-url " + cpuIndex)},
			[]string{"torch"}, &ir.PipOptions{IndexURL: cpuIndex}},
		{"a single string", []string{`install.python_packages("torch --index-url ` + cpuIndex + `")`}, []string{"torch"}, &ir.PipOptions{IndexURL: cpuIndex}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := load(t, build(tt.stmts...))
			var names []string
			for _, p := range env.PythonPackages {
				names = append(names, p.Name)
			}
			if !reflect.DeepEqual(names, tt.names) {
				t.Errorf("packages %q, want %q", names, tt.names)
			}
			got := env.PipOptions
			if got != nil {
				if got.Pos.File != file || got.Pos.Line < 2 {
					t.Errorf("options without the position of their entry: %v", got.Pos)
				}
				g := *got
				g.Pos = ir.Pos{}
				got = &g
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("options\n got %s\nwant %s", js(got), js(tt.want))
			}
		})
	}
}

// Positions: each requirement and the options point at their entry; a
// list the file computes points at the call.
func TestPipEntryPositions(t *testing.T) {
	entries := []string{"numpy", "torch --index-url " + cpuIndex}
	env := load(t, build(pp(entries...)))
	if got, want := env.PythonPackages[1].Pos, at(2, ppCol(entries, 1)); got != want {
		t.Errorf("torch at %v, want its entry at %v", got, want)
	}
	if got, want := env.PipOptions.Pos, at(2, ppCol(entries, 1)); got != want {
		t.Errorf("options at %v, want %v", got, want)
	}
	multi := "def build():\n    install.python_packages(name=[\n        \"numpy\",\n        \"torch --pre\",\n    ])\n"
	env = load(t, multi)
	if got, want := env.PipOptions.Pos, at(4, 9); got != want {
		t.Errorf("options in a multi-line list at %v, want %v", got, want)
	}
	tuple := build(`install.python_packages(("numpy", "torch --pre"))`)
	env = load(t, tuple)
	if got, want := env.PipOptions.Pos, at(2, 39); got != want {
		t.Errorf("options in a tuple at %v, want %v", got, want)
	}
	computed := build(`pkgs = ["numpy"] + ["torch --pre"]`, `install.python_packages(name=pkgs)`)
	env = load(t, computed)
	if got, want := env.PipOptions.Pos, at(3, 5); got != want {
		t.Errorf("options of a computed list at %v, want the call at %v", got, want)
	}
}

// Bad entries: each an error at the entry, saying what is wrong and how
// to fix it.
func TestPipOptionErrors(t *testing.T) {
	tests := []struct {
		name    string
		entries []string
		bad     int      // the entry the error points at
		want    []string // in the error text, in order
	}{
		{"unknown option", []string{"numpy", "torch --foo"}, 1,
			[]string{`entry "torch --foo": --foo is not a pip option envd accepts here`, "hint: name= takes requirements and these pip options: --index-url/-i URL"}},
		{"--target", []string{"--target /tmp/x numpy"}, 0, []string{"--target is not a pip option", "into the venv at /opt/envd/venv"}},
		{"--user", []string{"numpy --user"}, 0, []string{"--user is not a pip option", "/opt/envd/venv"}},
		{"-e", []string{"-e ."}, 0, []string{"-e is not a pip option", "local_wheels="}},
		{"-r", []string{"-r requirements.txt"}, 0, []string{"-r is not a pip option", `requirements="requirements.txt"`}},
		{"--no-index", []string{"--no-index"}, 0, []string{"--no-index is not a pip option", "--find-links/-f URL"}},
		{"missing value at the end", []string{"torch", "--index-url"}, 1, []string{"--index-url needs a URL after it", `write it as "--index-url URL"`}},
		{"missing value before an option", []string{"torch --index-url --pre"}, 0, []string{`--index-url needs a URL after it, in entry "torch --index-url --pre"`}},
		{"next entry is no value", []string{"--index-url", "torch numpy"}, 0, []string{"--index-url needs a URL after it"}},
		{"not a URL", []string{"torch --index-url download.pytorch.org/whl/cpu"}, 0,
			[]string{`the URL of --index-url, "download.pytorch.org/whl/cpu", is not an http://, https:// or file:// URL`, "hint: give an http(s):// or file:// URL"}},
		{"ftp URL", []string{"-f ftp://example.com/wheels"}, 0, []string{`the URL of -f, "ftp://example.com/wheels", is not an http://`}},
		{"empty = value", []string{"--extra-index-url="}, 0, []string{`the URL of --extra-index-url, "", is not`}},
		{"URL without host", []string{"--extra-index-url https:///simple"}, 0, []string{"has no host"}},
		{"host that is a URL", []string{"--trusted-host https://pypi.lan"}, 0, []string{`the host of --trusted-host, "https://pypi.lan", is not a host name`}},
		{"flag with a value", []string{"numpy --pre=yes"}, 0, []string{`--pre takes no value, got "--pre=yes"`}},
		{"short option glued to its value", []string{"-ihttps://download.pytorch.org/whl/cpu torch"}, 0, []string{"give -i and its value as two words", `write "-i URL"`}},
		{"two index URLs in a call", []string{"torch --index-url " + cpuIndex, "jax --index-url " + cu118}, 1,
			[]string{`--index-url "` + cu118 + `", but this call already gave --index-url "` + cpuIndex + `"`, "--extra-index-url"}},
		{"semicolon", []string{"torch; id"}, 0, []string{`entry "torch; id" holds ";"`, "never to a shell"}},
		{"and-and", []string{"torch && id"}, 0, []string{`holds "&"`}},
		{"command substitution", []string{"$(id)"}, 0, []string{`entry "$(id)" holds "$"`}},
		{"backquote in a URL", []string{"--index-url https://x.example/`id`"}, 0, []string{"holds \"`\""}},
		{"pipe", []string{"numpy | sh"}, 0, []string{`holds "|"`}},
		{"quote", []string{"numpy --index-url 'https://x.example/simple'"}, 0, []string{`holds "'"`}},
		{"newline", []string{`numpy\n--pre`}, 0, []string{`holds "\n"`}},
		{"empty entry", []string{"numpy", ""}, 1, []string{"entry 2 is empty", "hint: remove it"}},
		{"blank entry", []string{"   "}, 0, []string{"entry 1 is empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadSource(file, []byte(build(pp(tt.entries...))), "")
			if err == nil {
				t.Fatal("no error")
			}
			var e *ir.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not an *ir.Error: %v", err, err)
			}
			if want := at(2, ppCol(tt.entries, tt.bad)); e.Pos != want {
				t.Errorf("at %v, want entry %d at %v: %v", e.Pos, tt.bad, want, err)
			}
			if e.Hint == "" {
				t.Errorf("no hint: %v", err)
			}
			rest := err.Error()
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("error lacks %q (in order):\n%v", w, err)
				}
				rest = rest[i+len(w):]
			}
		})
	}
}

// --no-deps cannot skip the dependencies of some packages of the one
// resolve only: refused, naming what needs them.
func TestNoDepsForSomePackagesOnly(t *testing.T) {
	for _, tc := range []struct {
		stmts []string
		want  string
	}{
		{[]string{pp("numpy"), pp("mylib --no-deps")}, "the call at build.envd:2:5 installs packages without it"},
		{[]string{`config.jupyter()`, pp("mylib --no-deps")}, "config.jupyter() at build.envd:2:5 installs jupyterlab"},
	} {
		_, err := LoadSource(file, []byte(build(tc.stmts...)), "")
		var e *ir.Error
		if !errors.As(err, &e) || !strings.Contains(e.Msg, tc.want) || !strings.Contains(e.Hint, "run([\"pip install --no-deps NAME\"])") {
			t.Errorf("%q: %v; want %q", tc.stmts, err, tc.want)
			continue
		}
		if want := at(3, ppCol([]string{"mylib --no-deps"}, 0)); e.Pos != want {
			t.Errorf("%q: at %v, want the --no-deps entry at %v", tc.stmts, e.Pos, want)
		}
	}
}
