package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"envd.dev/envd/internal/lang"
)

const initHeader = "# Reference: `envd reference`; build with `envd build`, work in it with `envd up`.\ndef build():\n"
const initFooter = "    # config.jupyter()  # serve JupyterLab from the environment\n"

func TestInitWritesWhatItFinds(t *testing.T) {
	isolate(t)
	tests := []struct {
		name  string
		files map[string]string
		want  string // build.envd without the header and footer
		note  string // on stderr
	}{
		{"empty directory", map[string]string{}, `    base(os="ubuntu22.04", language="python3")
`, ""},
		{"requirements", map[string]string{"requirements.txt": "numpy\n"}, `    base(os="ubuntu22.04", language="python3")
    install.python_packages(requirements="requirements.txt")
`, ""},
		{"python version of a distribution", map[string]string{".python-version": "3.11.9\n"}, `    base(os="debian12", language="python3")
`, ""},
		{"python version of none", map[string]string{".python-version": "3.13\n"}, `    base(os="ubuntu22.04", language="python3")
    install.python(version="3.13")
`, ""},
		{"python version not CPython", map[string]string{".python-version": "pypy3.10\n"}, `    base(os="ubuntu22.04", language="python3")
`, `.python-version: "pypy3.10" is not a CPython 3 version`},
		{"pyproject", map[string]string{
			"pyproject.toml": `[project]
name = "demo"
dependencies = ["numpy>=1.26", "rich", "tomli; python_version < '3.11'", "pkg @ https://example.com/pkg.whl"]
`,
			"requirements.txt": "six\n",
			".python-version":  "3.10",
		}, `    base(os="ubuntu22.04", language="python3")
    install.python_packages(requirements="requirements.txt")
    install.python_packages(name=[
        "numpy>=1.26",
        "rich",
    ])
    # from pyproject.toml, for requirements.txt: tomli; python_version < '3.11'
    # from pyproject.toml, for requirements.txt: pkg @ https://example.com/pkg.whl
`, "2 dependencies with markers or URLs"},
		{"conda environment", map[string]string{
			"environment.yml": "name: demo\nchannels: [conda-forge]\ndependencies:\n  - python=3.10\n  - numpy\n  - pip:\n    - rich\n",
		}, `    base(os="ubuntu22.04", language="python3")
    install.python(version="3.10")
    install.conda()
    install.conda_packages(env_file="environment.yml")
`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeProject(t, tt.files)
			os.MkdirAll(dir, 0o755)
			code, out, errOut := runEnvd(t, dir, "init")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			data, err := os.ReadFile(filepath.Join(dir, "build.envd"))
			if err != nil {
				t.Fatal(err)
			}
			got := string(data)
			body := got[strings.Index(got, initHeader)+len(initHeader):]
			if !strings.HasSuffix(body, initFooter) || strings.TrimSuffix(body, initFooter) != tt.want {
				t.Errorf("build.envd:\n%s\nwant body:\n%s", got, tt.want)
			}
			if !strings.Contains(out, "wrote build.envd:") || !strings.Contains(out, got) {
				t.Errorf("stdout does not show what was written:\n%s", out)
			}
			if tt.note != "" && !strings.Contains(errOut, tt.note) {
				t.Errorf("stderr %q lacks %q", errOut, tt.note)
			}
			for name := range tt.files {
				if !strings.Contains(got, name) {
					t.Errorf("header does not name %s: %s", name, got)
				}
			}
			// What init writes loads as envd build would load it.
			if _, err := lang.Load(filepath.Join(dir, "build.envd"), ""); err != nil {
				t.Errorf("written file does not load: %v", err)
			}
		})
	}
}

func TestInitRefusesToOverwrite(t *testing.T) {
	isolate(t)
	dir := writeProject(t, map[string]string{"build.envd": "# mine\n", "requirements.txt": "six\n"})
	code, _, errOut := runEnvd(t, dir, "init")
	if code != 1 || !strings.Contains(errOut, "build.envd already exists; keep it, or pass --force to replace it") {
		t.Errorf("exit %d: %s", code, errOut)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "build.envd")); string(data) != "# mine\n" {
		t.Errorf("build.envd changed: %q", data)
	}
	if code, _, errOut := runEnvd(t, dir, "init", "--force"); code != 0 {
		t.Fatalf("--force: exit %d: %s", code, errOut)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "build.envd")); !strings.Contains(string(data), "requirements.txt") {
		t.Errorf("--force did not replace it: %q", data)
	}

	// -p names the directory; a missing one is a usage error.
	other := writeProject(t, map[string]string{"requirements.txt": "six\n"})
	if code, out, errOut := runEnvd(t, dir, "init", "-p", other); code != 0 || !strings.Contains(out, filepath.Join(other, "build.envd")) {
		t.Errorf("-p: exit %d: %s %s", code, out, errOut)
	}
	if code, _, _ := runEnvd(t, dir, "init", "-p", filepath.Join(dir, "missing")); code != 2 {
		t.Errorf("missing directory: exit %d, want 2", code)
	}
	bad := writeProject(t, map[string]string{"pyproject.toml": "[project\n"})
	if code, _, errOut := runEnvd(t, bad, "init"); code != 1 || !strings.Contains(errOut, "pyproject.toml:") {
		t.Errorf("bad pyproject: exit %d: %s", code, errOut)
	}
}

func TestReference(t *testing.T) {
	isolate(t)
	dir := t.TempDir()
	tests := []struct {
		args []string
		code int
		want []string // in stdout, or stderr when code != 0
	}{
		{[]string{"reference"}, 0, []string{"## Functions", "### base", "## install", "### install.python_packages", "## data", "### data.envd"}},
		{[]string{"reference", "install.cuda"}, 0, []string{"### install.cuda", `install.cuda(version, cudnn="8")`, "| `version` | `str` | required |"}},
		{[]string{"reference", "config"}, 0, []string{"### config.pip_index", "### config.owner"}},
		{[]string{"reference", "data.path"}, 0, []string{"### data.path.huggingface", `data.path.huggingface = "/home/envd/.cache/huggingface"`, "### data.path.dgl"}},
		{[]string{"reference", "install.codex"}, 0, []string{"### install.codex", `install.codex(version="0.98.0")`, "the original envd took the latest release"}},
		{[]string{"reference", "--format", "pyi"}, 0, []string{"class _DataPath:", "huggingface: str", "path: _DataPath", "data: _Data"}},
		{[]string{"reference", "--format", "pyi"}, 0, []string{"def base(", "class _Install:", "install: _Install"}},
		{[]string{"reference", "install.python_pakages"}, 2, []string{`no function or module "install.python_pakages"; did you mean "install.python_packages"?`}},
		{[]string{"reference", "--format", "html"}, 2, []string{`--format "html": use md or pyi`}},
		{[]string{"reference", "--format", "pyi", "install"}, 2, []string{"leave out install"}},
	}
	for _, tt := range tests {
		code, out, errOut := runEnvd(t, dir, tt.args...)
		text := out
		if tt.code != 0 {
			text = errOut
		}
		if code != tt.code {
			t.Errorf("%v: exit %d, want %d (%s)", tt.args, code, tt.code, errOut)
		}
		for _, w := range tt.want {
			if !strings.Contains(text, w) {
				t.Errorf("%v: output lacks %q:\n%s", tt.args, w, text)
			}
		}
	}
}
