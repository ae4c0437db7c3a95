package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	toml "github.com/pelletier/go-toml/v2"
	yaml "go.yaml.in/yaml/v3"

	"envd.dev/envd/internal/ir"
)

// project is what `envd init` found in a directory.
type project struct {
	sources []string // the files it read, for the header and the report

	python       string // a Python version, from .python-version or environment.yml
	requirements string // requirements.txt, when there is one
	deps         []string
	skipped      []string // dependencies build.envd cannot name (markers, URLs)
	condaEnv     string   // environment.yml, when there is one
	notes        []string // what the user should know, printed on stderr
}

var pythonVersionLine = regexp.MustCompile(`^3\.[0-9]+(\.[0-9]+)?$`)

// findProject reads the files that say what a Python project needs.
func findProject(dir string) (*project, error) {
	p := &project{}
	steps := []func(string) error{p.readPythonVersion, p.readRequirements, p.readPyproject, p.readCondaEnv}
	for _, step := range steps {
		if err := step(dir); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// read returns a file's content, or nil when it does not exist.
func (p *project) read(dir, name string) ([]byte, error) {
	data, err := os.ReadFile(filepath.Join(dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	p.sources = append(p.sources, name)
	return data, nil
}

func (p *project) readPythonVersion(dir string) error {
	data, err := p.read(dir, ".python-version")
	if data == nil || err != nil {
		return err
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(data)), "\n")
	line = strings.TrimSpace(line)
	if !pythonVersionLine.MatchString(line) {
		p.notes = append(p.notes, fmt.Sprintf(".python-version: %q is not a CPython 3 version; using the distribution's python3", line))
		return nil
	}
	p.python = line
	return nil
}

func (p *project) readRequirements(dir string) error {
	data, err := p.read(dir, "requirements.txt")
	if data != nil {
		p.requirements = "requirements.txt"
	}
	return err
}

// readPyproject takes [project].dependencies that build.envd can name;
// the others (markers, URLs) belong in a requirements file.
func (p *project) readPyproject(dir string) error {
	data, err := p.read(dir, "pyproject.toml")
	if data == nil || err != nil {
		return err
	}
	var doc struct {
		Project struct {
			Dependencies []string `toml:"dependencies"`
		} `toml:"project"`
	}
	if err := toml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("pyproject.toml: %w (fix it, or write build.envd by hand)", err)
	}
	for _, d := range doc.Project.Dependencies {
		if validRequirement(d) {
			p.deps = append(p.deps, d)
		} else {
			p.skipped = append(p.skipped, d)
		}
	}
	if len(p.skipped) > 0 {
		p.notes = append(p.notes, fmt.Sprintf("pyproject.toml: %d dependencies with markers or URLs are listed in build.envd as comments; put them in requirements.txt", len(p.skipped)))
	}
	return nil
}

// validRequirement is what install.python_packages(name=...) accepts.
func validRequirement(req string) bool {
	env := &ir.Environment{Base: ir.Base{Image: ir.DefaultImage}, PythonPackages: []ir.Package{{Name: req}}}
	return env.Validate() == nil
}

var condaPython = regexp.MustCompile(`^python\s*(==?|>=)?\s*(3\.[0-9]+)`)

// readCondaEnv uses environment.yml as it is (install.conda_packages reads
// it), and takes the Python version from it.
func (p *project) readCondaEnv(dir string) error {
	for _, name := range []string{"environment.yml", "environment.yaml"} {
		data, err := p.read(dir, name)
		if err != nil {
			return err
		}
		if data == nil {
			continue
		}
		var doc struct {
			Dependencies []any `yaml:"dependencies"`
		}
		if err := yaml.Unmarshal(data, &doc); err != nil {
			return fmt.Errorf("%s: %w (fix it, or write build.envd by hand)", name, err)
		}
		p.condaEnv = name
		for _, d := range doc.Dependencies {
			if s, ok := d.(string); ok {
				if m := condaPython.FindStringSubmatch(strings.TrimSpace(s)); m != nil && p.python == "" {
					p.python = m[2]
				}
			}
		}
		return nil
	}
	return nil
}

// distros are the os= names in the order init prefers them.
var distros = []string{"ubuntu22.04", "ubuntu24.04", "ubuntu20.04", "debian12", "debian11"}

// render writes build.envd for the project.
func (p *project) render() string {
	var b strings.Builder
	if len(p.sources) > 0 {
		fmt.Fprintf(&b, "# Written by `envd init` from %s.\n", strings.Join(p.sources, ", "))
	} else {
		b.WriteString("# Written by `envd init`.\n")
	}
	b.WriteString("# Reference: `envd reference`; build with `envd build`, work in it with `envd up`.\n")
	b.WriteString("def build():\n")
	osName, install := "ubuntu22.04", p.python
	if p.condaEnv == "" && p.python != "" {
		// A distribution whose python3 is the version: no download at build time.
		for _, name := range distros {
			if d, err := ir.LookupOS(name); err == nil && (p.python == d.Python || strings.HasPrefix(p.python, d.Python+".")) {
				osName, install = name, ""
				break
			}
		}
	}
	fmt.Fprintf(&b, "    base(os=%q, language=\"python3\")\n", osName)
	if install != "" {
		fmt.Fprintf(&b, "    install.python(version=%q)\n", install)
	}
	if p.condaEnv != "" {
		b.WriteString("    install.conda()\n")
		fmt.Fprintf(&b, "    install.conda_packages(env_file=%q)\n", p.condaEnv)
	}
	if p.requirements != "" {
		fmt.Fprintf(&b, "    install.python_packages(requirements=%q)\n", p.requirements)
	}
	if len(p.deps) > 0 {
		b.WriteString("    install.python_packages(name=[\n")
		for _, d := range p.deps {
			fmt.Fprintf(&b, "        %q,\n", d)
		}
		b.WriteString("    ])\n")
	}
	for _, d := range p.skipped {
		fmt.Fprintf(&b, "    # from pyproject.toml, for requirements.txt: %s\n", strings.Join(strings.Fields(d), " "))
	}
	b.WriteString("    # config.jupyter()  # serve JupyterLab from the environment\n")
	return b.String()
}
