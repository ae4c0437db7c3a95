package lang

import (
	"fmt"
	"slices"
	"strings"

	"envd.dev/envd/internal/ir"
)

// pipOption is a pip option envd accepts in an install.python_packages
// entry, as envd v1 users wrote them ("torch --index-url URL").
type pipOption struct {
	names []string // long name first, then the short one
	value string   // what it takes: "URL", "HOST", or "" for a flag
	// set records it in the call's options; ignored options have none.
	set func(o *pipCall, value string, pos ir.Pos) error
}

var pipOptions = []pipOption{
	{names: []string{"--index-url", "-i"}, value: "URL", set: func(o *pipCall, v string, pos ir.Pos) error {
		if o.IndexURL != "" && o.IndexURL != v {
			return ir.Errorf(pos, "pip takes one index URL per install: keep one here, and give the other with --extra-index-url",
				"install.python_packages: --index-url %q, but this call already gave --index-url %q", v, o.IndexURL)
		}
		o.IndexURL = v
		return nil
	}},
	{names: []string{"--extra-index-url"}, value: "URL", set: func(o *pipCall, v string, _ ir.Pos) error {
		o.ExtraIndexURLs = appendNew(o.ExtraIndexURLs, v)
		return nil
	}},
	{names: []string{"--find-links", "-f"}, value: "URL", set: func(o *pipCall, v string, _ ir.Pos) error {
		o.FindLinks = appendNew(o.FindLinks, v)
		return nil
	}},
	{names: []string{"--trusted-host"}, value: "HOST", set: func(o *pipCall, v string, _ ir.Pos) error {
		o.TrustedHosts = appendNew(o.TrustedHosts, v)
		return nil
	}},
	{names: []string{"--pre"}, set: func(o *pipCall, _ string, _ ir.Pos) error { o.Pre = true; return nil }},
	{names: []string{"--no-deps"}, set: func(o *pipCall, _ string, pos ir.Pos) error {
		if !o.NoDeps {
			o.NoDeps, o.noDepsPos = true, pos
		}
		return nil
	}},
	// Every build installs into a fresh venv the newest versions allowed:
	// there is nothing to upgrade, so --upgrade changes nothing.
	{names: []string{"--upgrade", "-U"}},
}

// pipOptionsAccepted lists pipOptions for hints.
const pipOptionsAccepted = "--index-url/-i URL, --extra-index-url URL, --find-links/-f URL, --trusted-host HOST, --pre, --no-deps, --upgrade/-U (changes nothing)"

// refusedPipOptions are pip options envd v1 files might hold, and why they
// have no place in name=.
var refusedPipOptions = map[string]string{
	"-r":            `give a requirements file with requirements="requirements.txt"`,
	"--requirement": `give a requirements file with requirements="requirements.txt"`,
	"-c":            `put "-c constraints.txt" in a requirements file given with requirements=`,
	"--constraint":  `put "-c constraints.txt" in a requirements file given with requirements=`,
	"-e":            "envd installs packages into the image; give a wheel of the project with local_wheels=, or run pip install -e in the environment",
	"--editable":    "envd installs packages into the image; give a wheel of the project with local_wheels=, or run pip install -e in the environment",
	"--user":        "envd installs every package into the venv at /opt/envd/venv, which is first on PATH",
	"--target":      "envd installs every package into the venv at /opt/envd/venv, which is first on PATH",
	"-t":            "envd installs every package into the venv at /opt/envd/venv, which is first on PATH",
	"--prefix":      "envd installs every package into the venv at /opt/envd/venv, which is first on PATH",
	"--root":        "envd installs every package into the venv at /opt/envd/venv, which is first on PATH",
}

func findPipOption(name string) *pipOption {
	for i, o := range pipOptions {
		if slices.Contains(o.names, name) {
			return &pipOptions[i]
		}
	}
	return nil
}

// pipCall is what one install.python_packages call asked of pip besides
// its requirements.
type pipCall struct {
	ir.PipOptions
	given     bool   // it gave an option that changes something
	installs  bool   // it names packages, a requirements file or wheels
	call      ir.Pos // the call
	noDepsPos ir.Pos
}

// pipEntries reads the name= entries of one call. An entry is a requirement
// ("numpy>=1.26", kept as written), or pip options, alone or after a
// requirement ("torch --index-url URL"); as on envd v1's one pip command
// line, an option's value may be the next entry.
func pipEntries(entries []string, positions []ir.Pos) ([]ir.Package, pipCall, error) {
	var pkgs []ir.Package
	var pc pipCall
	for i := 0; i < len(entries); i++ {
		e, pos := entries[i], positions[i]
		if c := ir.ShellSyntax(e); c != "" {
			return nil, pc, ir.Errorf(pos, `envd hands each requirement and option to pip as its own word, never to a shell: write one requirement per entry, e.g. "numpy>=1.26,<2", or an option such as "--index-url URL"; environment markers (;) go in a requirements file (requirements="requirements.txt")`,
				"install.python_packages: entry %q holds %q, which is not part of a requirement or a pip option", e, c)
		}
		words := strings.Fields(e)
		if len(words) == 0 {
			return nil, pc, ir.Errorf(pos, `remove it, or write a requirement such as "numpy"`, "install.python_packages: entry %d is empty", i+1)
		}
		if !slices.ContainsFunc(words, isOption) {
			pkgs = append(pkgs, ir.Package{Name: e, Pos: pos})
			continue
		}
		var req []string
		flush := func() {
			if len(req) > 0 {
				pkgs = append(pkgs, ir.Package{Name: strings.Join(req, " "), Pos: pos})
				req = nil
			}
		}
		for j := 0; j < len(words); j++ {
			w := words[j]
			if !isOption(w) {
				req = append(req, w)
				continue
			}
			flush()
			name, value, inline := w, "", false
			if strings.HasPrefix(w, "--") {
				name, value, inline = strings.Cut(w, "=")
			}
			opt := findPipOption(name)
			if opt == nil {
				return nil, pc, unknownPipOption(name, e, pos)
			}
			switch {
			case opt.value == "" && inline:
				return nil, pc, ir.Errorf(pos, fmt.Sprintf("write it alone: %q", name), "install.python_packages: %s takes no value, got %q", name, w)
			case opt.value == "" || inline:
			case j+1 < len(words) && !isOption(words[j+1]):
				j++
				value = words[j]
			case j+1 == len(words) && i+1 < len(entries) && isValueEntry(entries[i+1]):
				// "--index-url", "https://..." : the value is the next entry.
				i++
				value = strings.TrimSpace(entries[i])
			default:
				return nil, pc, ir.Errorf(pos, fmt.Sprintf("write it as %q", name+" "+opt.value),
					"install.python_packages: %s needs a %s after it, in entry %q", name, opt.value, e)
			}
			if err := checkPipValue(opt, name, value, pos); err != nil {
				return nil, pc, err
			}
			if opt.set == nil {
				continue
			}
			if err := opt.set(&pc, value, pos); err != nil {
				return nil, pc, err
			}
			if !pc.given {
				pc.given, pc.Pos = true, pos
			}
		}
		flush()
	}
	return pkgs, pc, nil
}

func isOption(word string) bool { return strings.HasPrefix(word, "-") }

// isValueEntry says an entry can be the value of the option ending the
// entry before it: one word, not an option.
func isValueEntry(e string) bool {
	w := strings.Fields(e)
	return len(w) == 1 && !isOption(w[0])
}

func checkPipValue(opt *pipOption, name, value string, pos ir.Pos) error {
	switch opt.value {
	case "URL":
		if p := ir.PipURLProblem(value); p != "" {
			return ir.Errorf(pos, fmt.Sprintf(`give an http(s):// or file:// URL, e.g. "%s https://download.pytorch.org/whl/cpu"`, name),
				"install.python_packages: the URL of %s, %q, %s", name, value, p)
		}
	case "HOST":
		if p := ir.PipHostProblem(value); p != "" {
			return ir.Errorf(pos, `give the host alone, e.g. "--trusted-host download.pytorch.org"`,
				"install.python_packages: the host of %s, %q, %s", name, value, p)
		}
	}
	return nil
}

func unknownPipOption(name, entry string, pos ir.Pos) error {
	if short := findPipOption(name[:min(2, len(name))]); short != nil && !strings.HasPrefix(name, "--") && short.value != "" {
		return ir.Errorf(pos, fmt.Sprintf("write %q", name[:2]+" "+short.value),
			"install.python_packages: entry %q: give %s and its value as two words", entry, name[:2])
	}
	hint := "name= takes requirements and these pip options: " + pipOptionsAccepted
	if why, ok := refusedPipOptions[name]; ok {
		hint = why + "; " + hint
	}
	return ir.Errorf(pos, hint, "install.python_packages: entry %q: %s is not a pip option envd accepts here", entry, name)
}

// mergePipCalls makes the options of envd's one resolve out of those of
// each call (nil when no call gave any). Extra indexes, find-links, trusted
// hosts and --pre apply to the whole resolve. --index-url replaces the
// default index only when every call that installs something gives it (the
// original's meaning for one call); else it is asked besides the default,
// like --extra-index-url. --no-deps can only be for every package.
func mergePipCalls(calls []pipCall, jupyter *ir.Jupyter) (*ir.PipOptions, error) {
	var m *ir.PipOptions
	index, sole := "", jupyter == nil
	for _, c := range calls {
		if c.given && m == nil {
			m = &ir.PipOptions{Pos: c.Pos}
		}
		if index == "" {
			index = c.IndexURL
		}
	}
	if m == nil {
		return nil, nil
	}
	for _, c := range calls {
		if c.installs && c.IndexURL != index {
			sole = false
		}
	}
	for _, c := range calls {
		switch {
		case c.IndexURL == "":
		case sole:
			m.IndexURL = c.IndexURL
		default:
			m.ExtraIndexURLs = appendNew(m.ExtraIndexURLs, c.IndexURL)
		}
		for _, u := range c.ExtraIndexURLs {
			m.ExtraIndexURLs = appendNew(m.ExtraIndexURLs, u)
		}
		for _, u := range c.FindLinks {
			m.FindLinks = appendNew(m.FindLinks, u)
		}
		for _, h := range c.TrustedHosts {
			m.TrustedHosts = appendNew(m.TrustedHosts, h)
		}
		m.Pre = m.Pre || c.Pre
		m.NoDeps = m.NoDeps || c.NoDeps
	}
	if m.NoDeps {
		if err := checkNoDeps(calls, jupyter); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// checkNoDeps refuses --no-deps unless every package can do without its
// dependencies: one resolve cannot skip them for some packages only.
func checkNoDeps(calls []pipCall, jupyter *ir.Jupyter) error {
	var at ir.Pos
	for _, c := range calls {
		if c.NoDeps {
			at = c.noDepsPos
			break
		}
	}
	hint := `envd resolves every install.python_packages call together, so --no-deps is for all of their packages or none: give it in each call, or install this package in a run() step: run(["pip install --no-deps NAME"])`
	for _, c := range calls {
		if c.installs && !c.NoDeps {
			return ir.Errorf(at, hint, "install.python_packages: --no-deps would apply to every package, but the call at %s installs packages without it", c.call)
		}
	}
	if jupyter != nil {
		return ir.Errorf(at, hint, "install.python_packages: --no-deps would apply to every package, but config.jupyter() at %s installs jupyterlab, which needs its dependencies", jupyter.Pos)
	}
	return nil
}

func appendNew(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}
