package lang

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"envd.dev/envd/internal/ir"
)

const file = "build.envd"

// at is a position in the test file.
func at(line, col int) ir.Pos { return ir.Pos{File: file, Line: line, Col: col} }

// build wraps statements in def build():, one per line, so statement i
// (from 0) is at line i+2, column 5.
func build(stmts ...string) string {
	return "def build():\n    " + strings.Join(stmts, "\n    ") + "\n"
}

func load(t *testing.T, src string) *ir.Environment {
	t.Helper()
	res, err := LoadSource(file, []byte(src), "")
	if err != nil {
		t.Fatalf("unexpected error: %v\nsource:\n%s", err, src)
	}
	return res.Env
}

func js(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

func checkEnv(t *testing.T, got, want *ir.Environment) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("environment differs\ngot:  %s\nwant: %s", js(got), js(want))
	}
}

func withImage(b ir.Base, image string) ir.Base { b.Image = image; return b }

// The article's code blocks, verbatim in testdata, must load as they are.
func TestArticle(t *testing.T) {
	ubuntu2004 := func(f string, line int, lang string) ir.Base {
		return ir.Base{Image: "docker.io/library/ubuntu:20.04", OS: "ubuntu20.04", Language: lang, Dev: true,
			Pos: ir.Pos{File: f, Line: line, Col: 5}}
	}
	p := func(f string, line int) ir.Pos { return ir.Pos{File: f, Line: line, Col: 5} }
	mnist := func(f string) []ir.Package {
		var pkgs []ir.Package
		// Each entry's own position: a mistake in one points at it.
		for i, n := range []string{"tensorflow", "numpy", "opencv-python", "matplotlib"} {
			pkgs = append(pkgs, ir.Package{Name: n, Pos: ir.Pos{File: f, Line: 20 + i, Col: 9}})
		}
		return pkgs
	}
	a1, a2, a3 := "testdata/article1.envd", "testdata/article2.envd", "testdata/article3.envd"
	tests := []struct {
		path, fn string
		extra    string // appended to the article's code
		want     *ir.Environment
	}{
		{path: a1, want: &ir.Environment{
			Base:           withImage(ubuntu2004(a1, 2, "python"), "docker.io/nvidia/cuda:11.6.2-cudnn8-devel-ubuntu20.04"),
			Python:         &ir.Python{Pos: p(a1, 2)},
			CUDA:           &ir.CUDA{Version: "11.6", CUDNN: "8", Pos: p(a1, 3)},
			PythonPackages: []ir.Package{{Name: "tensorflow-gpu", Pos: ir.Pos{File: a1, Line: 5, Col: 9}}},
		}},
		{path: a2, want: &ir.Environment{
			Base:             ubuntu2004(a2, 2, "python3"),
			Python:           &ir.Python{Pos: p(a2, 2)},
			VSCodeExtensions: []ir.Package{{Name: "ms-python.python", Pos: p(a2, 3)}},
			Jupyter:          &ir.Jupyter{Pos: p(a2, 7)},
			Shell:            "zsh",
		}},
		// build() calls configure_mnist(), defined after it; the article
		// defines configure_streamlit() but does not call it.
		{path: a3, want: &ir.Environment{
			Base:           ubuntu2004(a3, 2, "python3"),
			Python:         &ir.Python{Pos: p(a3, 2)},
			AptPackages:    []ir.Package{{Name: "libgl1", Pos: p(a3, 16)}},
			PythonPackages: mnist(a3),
		}},
		// The team pattern the article describes: reuse both functions.
		{path: a3, fn: "streamlit_app", extra: "\ndef streamlit_app():\n    build()\n    configure_streamlit(8501)\n", want: &ir.Environment{
			Base:        ubuntu2004(a3, 2, "python3"),
			Python:      &ir.Python{Pos: p(a3, 2)},
			AptPackages: []ir.Package{{Name: "libgl1", Pos: p(a3, 16)}},
			PythonPackages: append(mnist(a3),
				ir.Package{Name: "streamlit", Pos: ir.Pos{File: a3, Line: 7, Col: 9}},
				ir.Package{Name: "streamlit_drawable_canvas", Pos: ir.Pos{File: a3, Line: 8, Col: 9}}),
			Expose:  []ir.Expose{{EnvdPort: 8501, HostPort: 8501, Service: "streamlit", Pos: p(a3, 10)}},
			Daemons: []ir.Daemon{{Command: []string{"streamlit", "run", "~/streamlit-mnist/app.py"}, Pos: p(a3, 11)}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.path+":"+tt.fn, func(t *testing.T) {
			src, err := os.ReadFile(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			res, err := LoadSource(tt.path, append(src, tt.extra...), tt.fn)
			if err != nil {
				t.Fatalf("article code failed: %v", err)
			}
			checkEnv(t, res.Env, tt.want)
		})
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "proj"), 0o755); err != nil {
		t.Fatal(err)
	}
	src := build(`base(image="debian:bookworm", dev=True)`) + "def other():\n    shell(\"zsh\")\n"
	if err := os.WriteFile(filepath.Join(dir, "proj", "build.envd"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)

	// The path is used verbatim in positions and in Files.
	res, err := Load("proj/build.envd", "")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"proj/build.envd"}; !reflect.DeepEqual(res.Files, want) {
		t.Errorf("Files = %q, want %q", res.Files, want)
	}
	want := ir.Base{Image: "docker.io/library/debian:bookworm", Dev: true, Pos: ir.Pos{File: "proj/build.envd", Line: 2, Col: 5}}
	if res.Env.Base != want {
		t.Errorf("Base = %+v, want %+v", res.Env.Base, want)
	}

	// Another function by name.
	res, err = Load("proj/build.envd", "other")
	if err != nil {
		t.Fatal(err)
	}
	if res.Env.Shell != "zsh" || res.Env.Base.Image != ir.DefaultImage {
		t.Errorf("other(): shell %q, image %q", res.Env.Shell, res.Env.Base.Image)
	}
	// other() has no base(): its base is at its def, for envd up's error.
	if want := (ir.Pos{File: "proj/build.envd", Line: 3, Col: 1}); res.Env.Base.Pos != want || res.Env.Base.Dev {
		t.Errorf("other(): base at %v (dev %v), want %v without dev", res.Env.Base.Pos, res.Env.Base.Dev, want)
	}

	_, err = Load("missing/build.envd", "")
	var e *ir.Error
	if !errors.As(err, &e) || e.Pos != (ir.Pos{File: "missing/build.envd"}) || !strings.Contains(e.Msg, "cannot read the build file: no such file") {
		t.Errorf("missing file: got %v", err)
	}
}

// Original-style files keep v1's base() defaults: no base() and base() are
// ubuntu:22.04 without dev, base(dev=True) a dev environment.
func TestOriginalBaseDefaults(t *testing.T) {
	tests := []struct {
		file string
		want ir.Base
	}{
		{"no_base_torch_cpu.envd", ir.Base{Image: ir.DefaultImage, Implicit: true, Pos: ir.Pos{Line: 3, Col: 1}}},
		{"bare_base_extra_index.envd", ir.Base{Image: ir.DefaultImage, Pos: ir.Pos{Line: 3, Col: 5}}},
		{"base_dev_true_find_links.envd", ir.Base{Image: ir.DefaultImage, Dev: true, Pos: ir.Pos{Line: 3, Col: 5}}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", "original", tt.file)
			res, err := Load(path, "")
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			want.Pos.File = path
			if res.Env.Base != want {
				t.Errorf("Base = %+v, want %+v", res.Env.Base, want)
			}
			if res.Env.Python == nil || len(res.Env.PythonPackages) == 0 {
				t.Errorf("no Python packages: %+v", res.Env)
			}
		})
	}
}

func TestPrint(t *testing.T) {
	var out bytes.Buffer
	_, err := Loader{Print: &out}.LoadSource(file, []byte(`print("top")
def build():
    print("in build", 1 + 1)
`), "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "top\nin build 2\n"; got != want {
		t.Errorf("print wrote %q, want %q", got, want)
	}
}

// The dialect is close to Python: top-level control flow, while, recursion,
// sets, globals reassigned and mutated from functions.
func TestPythonDialect(t *testing.T) {
	env := load(t, `
PKGS = ["numpy"]
if True:
    PKGS.append("pandas")
n = 0
while n < 2:
    n += 1
n = 10

def fact(k):
    return 1 if k <= 1 else k * fact(k - 1)

def build():
    PKGS.append("scipy==%d" % fact(3))
    names = sorted(set(PKGS + ["numpy"]))
    install.python_packages(name=names)
    for p in names:
        if p == "numpy":
            continue
`)
	var got []string
	for _, p := range env.PythonPackages {
		got = append(got, p.Name)
	}
	if want := []string{"numpy", "pandas", "scipy==6"}; !reflect.DeepEqual(got, want) {
		t.Errorf("packages %q, want %q", got, want)
	}
}

// Loads share builtin tables; they must not share state.
func TestConcurrentLoads(t *testing.T) {
	for range 8 {
		t.Run("", func(t *testing.T) {
			t.Parallel()
			env := load(t, build(`base(os="ubuntu22.04", language="python3")`, `install.apt_packages(["git"])`))
			if len(env.AptPackages) != 1 {
				t.Errorf("apt packages %v", env.AptPackages)
			}
		})
	}
}
