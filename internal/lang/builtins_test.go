package lang

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"envd.dev/envd/internal/ir"
)

// noBase is the base of a file that never calls base(): the original
// envd's base(), at the build function.
var noBase = ir.Base{Image: ir.DefaultImage, Implicit: true, Pos: at(1, 1)}

// cudaBase is noBase (ubuntu:22.04) after install.cuda swapped the image.
func cudaBase(image string) ir.Base { b := noBase; b.Image = image; return b }

func pkgs(pos ir.Pos, names ...string) []ir.Package {
	var out []ir.Package
	for _, n := range names {
		out = append(out, ir.Package{Name: n, Pos: pos})
	}
	return out
}

// Each builtin, in positional and keyword forms, and the IR it records.
// Statement i of build(...) is at line i+2, column 5.
func TestBuiltins(t *testing.T) {
	l2, l3, l4 := at(2, 5), at(3, 5), at(4, 5)
	tests := []struct {
		name  string
		stmts []string
		want  ir.Environment // Base defaults to noBase
	}{
		// base
		{"base os language", []string{`base(os="ubuntu20.04", language="python")`}, ir.Environment{
			Base:   ir.Base{Image: "docker.io/library/ubuntu:20.04", OS: "ubuntu20.04", Language: "python", Dev: true, Pos: l2},
			Python: &ir.Python{Pos: l2},
		}},
		{"base positional, python version", []string{`base("ubuntu22.04", "python3.9")`}, ir.Environment{
			Base:   ir.Base{Image: "docker.io/library/ubuntu:22.04", OS: "ubuntu22.04", Language: "python3.9", Dev: true, Pos: l2},
			Python: &ir.Python{Version: "3.9", Pos: l2},
		}},
		// envd v1's positional order is base(image, dev); the article's is base(os, language).
		{"base positional v1", []string{`base("ubuntu:22.04", True)`}, ir.Environment{
			Base: ir.Base{Image: "docker.io/library/ubuntu:22.04", Dev: true, Pos: l2},
		}},
		{"base positional v1 image", []string{`base("nvidia/cuda:12.4.1-devel-ubuntu22.04")`}, ir.Environment{
			Base: ir.Base{Image: "docker.io/nvidia/cuda:12.4.1-devel-ubuntu22.04", Pos: l2},
		}},
		{"base positional v1 short image", []string{`base("ubuntu", False)`}, ir.Environment{
			Base: ir.Base{Image: "docker.io/library/ubuntu:latest", Pos: l2},
		}},
		{"base positional os", []string{`base("debian12")`}, ir.Environment{
			Base: ir.Base{Image: "docker.io/library/debian:bookworm", OS: "debian12", Dev: true, Pos: l2},
		}},
		{"base os dev=False", []string{`base(os="debian12", dev=False)`}, ir.Environment{
			Base: ir.Base{Image: "docker.io/library/debian:bookworm", OS: "debian12", Pos: l2},
		}},
		{"base image dev", []string{`base(image="ubuntu:22.04", dev=True)`}, ir.Environment{
			Base: ir.Base{Image: "docker.io/library/ubuntu:22.04", Dev: true, Pos: l2},
		}},
		{"base image defaults to dev=False", []string{`base(image="nvidia/cuda:12.4.1-base-ubuntu22.04")`}, ir.Environment{
			Base: ir.Base{Image: "docker.io/nvidia/cuda:12.4.1-base-ubuntu22.04", Pos: l2},
		}},
		{"base language r", []string{`base(os="ubuntu22.04", language="r")`}, ir.Environment{
			Base: ir.Base{Image: "docker.io/library/ubuntu:22.04", OS: "ubuntu22.04", Language: "r", Dev: true, Pos: l2},
			R:    &ir.R{Pos: l2},
		}},
		{"base language julia", []string{`base(os="ubuntu22.04", language="julia")`}, ir.Environment{
			Base:  ir.Base{Image: "docker.io/library/ubuntu:22.04", OS: "ubuntu22.04", Language: "julia", Dev: true, Pos: l2},
			Julia: &ir.Julia{Pos: l2},
		}},
		// The original envd's v1 defaults: base() and no base() at all are
		// ubuntu:22.04 without dev; os= or language= (the article's form)
		// mean a dev environment unless image= is given.
		{"no base: v1's base()", []string{`pass`}, ir.Environment{}},
		{"base() bare", []string{`base()`}, ir.Environment{
			Base: ir.Base{Image: ir.DefaultImage, Pos: l2},
		}},
		{"base dev=True", []string{`base(dev=True)`}, ir.Environment{
			Base: ir.Base{Image: ir.DefaultImage, Dev: true, Pos: l2},
		}},
		{"base image", []string{`base(image="x")`}, ir.Environment{
			Base: ir.Base{Image: "docker.io/library/x:latest", Pos: l2},
		}},
		{"base image dev=True", []string{`base(image="x", dev=True)`}, ir.Environment{
			Base: ir.Base{Image: "docker.io/library/x:latest", Dev: true, Pos: l2},
		}},
		{"base os alone", []string{`base(os="debian12")`}, ir.Environment{
			Base: ir.Base{Image: "docker.io/library/debian:bookworm", OS: "debian12", Dev: true, Pos: l2},
		}},
		{"base language alone: the default image, dev", []string{`base(language="python3")`}, ir.Environment{
			Base:   ir.Base{Image: ir.DefaultImage, Language: "python3", Dev: true, Pos: l2},
			Python: &ir.Python{Pos: l2},
		}},
		{"base language dev=False", []string{`base(language="python3", dev=False)`}, ir.Environment{
			Base:   ir.Base{Image: ir.DefaultImage, Language: "python3", Pos: l2},
			Python: &ir.Python{Pos: l2},
		}},
		{"base image language: image= decides, not dev", []string{`base(image="debian:bookworm", language="python3")`}, ir.Environment{
			Base:   ir.Base{Image: "docker.io/library/debian:bookworm", Language: "python3", Pos: l2},
			Python: &ir.Python{Pos: l2},
		}},

		// shell, run, git_config
		{"shell", []string{`shell("zsh")`}, ir.Environment{Shell: "zsh"}},
		{"shell keyword", []string{`shell(name="fish")`}, ir.Environment{Shell: "fish"}},
		{"shell default", []string{`shell()`}, ir.Environment{Shell: "base"}},
		{"run and copy keep order", []string{
			`run(commands=["echo a", "echo b"], mount_host=True)`,
			`io.copy("data", "/home/envd/data")`,
			`run("echo c")`,
		}, ir.Environment{Steps: []ir.Step{
			{Run: &ir.RunStep{Commands: []string{"echo a", "echo b"}, MountHost: true}, Pos: l2},
			{Copy: &ir.CopyStep{Source: "data", Target: "/home/envd/data"}, Pos: l3},
			{Run: &ir.RunStep{Commands: []string{"echo c"}}, Pos: l4},
		}}},
		{"git_config", []string{`git_config(name="Ann", email="ann@example.com", editor="vim")`}, ir.Environment{
			GitConfig: &ir.GitConfig{Name: "Ann", Email: "ann@example.com", Editor: "vim", Pos: l2},
		}},
		{"git_config positional and None", []string{`git_config("Ann", None)`}, ir.Environment{
			GitConfig: &ir.GitConfig{Name: "Ann", Pos: l2},
		}},

		// install
		{"install.python default", []string{`install.python()`}, ir.Environment{Python: &ir.Python{Version: "3.11", Pos: l2}}},
		{"install.python version", []string{`install.python(version="3.9")`}, ir.Environment{Python: &ir.Python{Version: "3.9", Pos: l2}}},
		{"install.python after packages", []string{`install.python_packages(["numpy"])`, `install.python("3.12")`}, ir.Environment{
			Python:         &ir.Python{Version: "3.12", Pos: l3},
			PythonPackages: pkgs(at(2, 30), "numpy"),
		}},
		{"install.python same version as base", []string{`base(os="ubuntu22.04", language="python3.10")`, `install.python("3.10")`}, ir.Environment{
			Base:   ir.Base{Image: "docker.io/library/ubuntu:22.04", OS: "ubuntu22.04", Language: "python3.10", Dev: true, Pos: l2},
			Python: &ir.Python{Version: "3.10", Pos: l2},
		}},
		{"install.python after base python3", []string{`base(os="ubuntu22.04", language="python3")`, `install.python("3.12")`}, ir.Environment{
			Base:   ir.Base{Image: "docker.io/library/ubuntu:22.04", OS: "ubuntu22.04", Language: "python3", Dev: true, Pos: l2},
			Python: &ir.Python{Version: "3.12", Pos: l3},
		}},
		{"install.apt_packages", []string{`install.apt_packages(name=["git", "curl"])`, `install.apt_packages("vim")`}, ir.Environment{
			AptPackages: append(pkgs(l2, "git", "curl"), pkgs(l3, "vim")...),
		}},
		{"install.system_packages (v0)", []string{`install.system_packages(["git"])`}, ir.Environment{AptPackages: pkgs(l2, "git")}},
		{"install.python_packages implies python", []string{
			`base(image="debian:bookworm", dev=True)`,
			`install.python_packages(name=["numpy", "pandas>=2"], requirements="requirements.txt", local_wheels=["wheels/a.whl"])`,
			`install.python_packages("rich")`,
		}, ir.Environment{
			Base:           ir.Base{Image: "docker.io/library/debian:bookworm", Dev: true, Pos: l2},
			Python:         &ir.Python{Pos: l3},
			PythonPackages: append(append(pkgs(at(3, 35), "numpy"), pkgs(at(3, 44), "pandas>=2")...), pkgs(at(4, 29), "rich")...),
			Requirements:   []ir.File{{Path: "requirements.txt", Pos: l3}},
			LocalWheels:    []ir.File{{Path: "wheels/a.whl", Pos: l3}},
		}},
		// install.cuda puts the nvidia/cuda image of the same Ubuntu under the build.
		{"install.cuda", []string{`install.cuda(version="11.6", cudnn="8")`}, ir.Environment{
			Base: cudaBase("docker.io/nvidia/cuda:11.6.2-cudnn8-devel-ubuntu22.04"), CUDA: &ir.CUDA{Version: "11.6", CUDNN: "8", Pos: l2}}},
		{"install.cuda default cudnn", []string{`install.cuda("12.4.1")`}, ir.Environment{
			Base: cudaBase("docker.io/nvidia/cuda:12.4.1-cudnn-devel-ubuntu22.04"), CUDA: &ir.CUDA{Version: "12.4.1", CUDNN: "8", Pos: l2}}},
		{"install.cuda no cudnn", []string{`install.cuda("12.4.1", cudnn=None)`}, ir.Environment{
			Base: cudaBase("docker.io/nvidia/cuda:12.4.1-devel-ubuntu22.04"), CUDA: &ir.CUDA{Version: "12.4.1", Pos: l2}}},
		{"install.vscode_extensions", []string{`install.vscode_extensions(["ms-python.python"])`, `install.vscode_extensions(name=["a.b"])`}, ir.Environment{
			VSCodeExtensions: append(pkgs(l2, "ms-python.python"), pkgs(l3, "a.b")...),
		}},

		// config
		{"config.pip_index", []string{`config.pip_index(url="https://mirror/simple", extra_url="https://extra/simple", trust=True)`}, ir.Environment{
			PipIndex: &ir.PipIndex{URL: "https://mirror/simple", ExtraURL: "https://extra/simple", Trust: true, Pos: l2},
		}},
		{"config.pip_index positional", []string{`config.pip_index("https://mirror/simple")`}, ir.Environment{
			PipIndex: &ir.PipIndex{URL: "https://mirror/simple", Pos: l2},
		}},
		{"config.apt_source", []string{`config.apt_source(source="deb http://mirror/debian bookworm main")`}, ir.Environment{
			AptSource: &ir.AptSource{Source: "deb http://mirror/debian bookworm main", Pos: l2},
		}},
		{"config.jupyter default", []string{`config.jupyter()`}, ir.Environment{
			Python:  &ir.Python{Pos: l2},
			Jupyter: &ir.Jupyter{Pos: l2},
		}},
		{"config.jupyter port 0: a free one", []string{`config.jupyter(port=0)`}, ir.Environment{
			Python: &ir.Python{Pos: l2}, Jupyter: &ir.Jupyter{Pos: l2},
		}},
		{"config.jupyter token port", []string{`install.python("3.11")`, `config.jupyter(token="secret", port=9999)`}, ir.Environment{
			Python:  &ir.Python{Version: "3.11", Pos: l2},
			Jupyter: &ir.Jupyter{Token: "secret", Port: 9999, Pos: l3},
		}},
		{"config.jupyter password (early envd)", []string{`config.jupyter(password="secret", port="8080")`}, ir.Environment{
			Python:  &ir.Python{Pos: l2},
			Jupyter: &ir.Jupyter{Token: "secret", Port: 8080, Pos: l2},
		}},

		// runtime
		{"runtime.environ merges", []string{
			`runtime.environ(env={"A": "1", "B": "2"}, extra_path=["/opt/bin"])`,
			`runtime.environ(env={"B": "3", "PORT": 80}, extra_path="/usr/local/go/bin")`,
		}, ir.Environment{
			Environ:   map[string]string{"A": "1", "B": "3", "PORT": "80"},
			ExtraPath: []string{"/opt/bin", "/usr/local/go/bin"},
		}},
		{"runtime.expose", []string{
			`runtime.expose(envd_port=8501, host_port=8501, service="streamlit")`,
			`runtime.expose(6006, listen_addr="0.0.0.0")`,
		}, ir.Environment{Expose: []ir.Expose{
			{EnvdPort: 8501, HostPort: 8501, Service: "streamlit", Pos: l2},
			{EnvdPort: 6006, ListenAddr: "0.0.0.0", Pos: l3},
		}}},
		{"runtime.daemon", []string{`runtime.daemon(commands=[["jupyter-lab", "--port", "8080"], ["python3", "serve.py"]])`}, ir.Environment{
			Daemons: []ir.Daemon{
				{Command: []string{"jupyter-lab", "--port", "8080"}, Pos: l2},
				{Command: []string{"python3", "serve.py"}, Pos: l2},
			},
		}},
		{"runtime.init argv and shell", []string{`runtime.init([["mkdir", "-p", "/data"], "echo ready > /tmp/x"])`}, ir.Environment{
			Init: []ir.Daemon{
				{Command: []string{"mkdir", "-p", "/data"}, Pos: l2},
				{Command: []string{"sh", "-c", "echo ready > /tmp/x"}, Pos: l2},
			},
		}},
		{"runtime.mount", []string{`runtime.mount(host_path="~/data", envd_path="/data")`, `io.mount(src="/cache", dest="/cache")`}, ir.Environment{
			Mounts: []ir.Mount{{HostPath: "~/data", EnvdPath: "/data", Pos: l2}, {HostPath: "/cache", EnvdPath: "/cache", Pos: l3}},
		}},
		// In the container, ~ is the dev user's home, as in the original envd.
		{"runtime.mount ~ in envd_path", []string{`runtime.mount("~/data", "~/data")`, `io.mount(host_path="/cache", envd_path="~")`}, ir.Environment{
			Mounts: []ir.Mount{{HostPath: "~/data", EnvdPath: "/home/envd/data", Pos: l2}, {HostPath: "/cache", EnvdPath: "/home/envd", Pos: l3}},
		}},

		// io.copy: current, v1 and v0 parameter names
		{"io.copy names", []string{
			`io.copy(source="a", target="/a")`,
			`io.copy(host_path="b", envd_path="/b")`,
			`io.copy(src="c", dest="/c")`,
		}, ir.Environment{Steps: []ir.Step{
			{Copy: &ir.CopyStep{Source: "a", Target: "/a"}, Pos: l2},
			{Copy: &ir.CopyStep{Source: "b", Target: "/b"}, Pos: l3},
			{Copy: &ir.CopyStep{Source: "c", Target: "/c"}, Pos: l4},
		}}},
		// io.copy from an image: the reference is normalised like base(image=...).
		{"io.copy image", []string{
			`io.copy(source="/bin/micromamba", target="/usr/local/bin/micromamba", image="mambaorg/micromamba:1.0.0")`,
			`io.copy(host_path="/opt/conda", envd_path="/opt/conda", image="ghcr.io/org/conda@sha256:` + strings.Repeat("ab", 32) + `")`,
			`io.copy("/usr/bin/tool", "/usr/local/bin/tool", "tool")`,
		}, ir.Environment{Steps: []ir.Step{
			{Copy: &ir.CopyStep{Source: "/bin/micromamba", Target: "/usr/local/bin/micromamba", Image: "docker.io/mambaorg/micromamba:1.0.0"}, Pos: l2},
			{Copy: &ir.CopyStep{Source: "/opt/conda", Target: "/opt/conda", Image: "ghcr.io/org/conda@sha256:" + strings.Repeat("ab", 32)}, Pos: l3},
			{Copy: &ir.CopyStep{Source: "/usr/bin/tool", Target: "/usr/local/bin/tool", Image: "docker.io/library/tool:latest"}, Pos: l4},
		}}},
		{"io.copy image None", []string{`io.copy("data", "/data", image=None)`}, ir.Environment{Steps: []ir.Step{
			{Copy: &ir.CopyStep{Source: "data", Target: "/data"}, Pos: l2},
		}}},

		// The rest of envd's v1 API.
		{"conda", []string{
			`install.conda(use_mamba=True)`,
			`install.conda_packages(name=["pytorch"], channel="pytorch")`,
			`install.conda_packages(["numpy>=1.26"], env_file="environment.yml")`,
		}, ir.Environment{
			Python: &ir.Python{Pos: l2},
			Conda: &ir.Conda{UseMamba: true, Packages: append(pkgs(l3, "pytorch"), pkgs(l4, "numpy>=1.26")...), Channels: []string{"pytorch"},
				EnvFile: &ir.File{Path: "environment.yml", Pos: l4}, Pos: l2},
		}},
		{"conda_channel implies conda", []string{`config.conda_channel(channel="channels:\n  - conda-forge\n")`}, ir.Environment{
			Python: &ir.Python{Pos: l2},
			Conda:  &ir.Conda{Channel: "channels:\n  - conda-forge\n", Pos: l2},
		}},
		{"uv", []string{`install.uv()`}, ir.Environment{Python: &ir.Python{Pos: l2}, UV: &ir.UV{Pos: l2}}},
		{"uv python_version", []string{`install.uv(python_version="3.12")`}, ir.Environment{Python: &ir.Python{Version: "3.12", Pos: l2}, UV: &ir.UV{Pos: l2}}},
		{"pixi", []string{`install.pixi(use_pixi_mirror=True, pypi_index="https://mirror/simple")`}, ir.Environment{
			Pixi: &ir.Pixi{UseMirror: true, PyPIIndex: "https://mirror/simple", Pos: l2},
		}},
		{"pixi defaults", []string{`install.pixi(pypi_index=None)`}, ir.Environment{Pixi: &ir.Pixi{Pos: l2}}},
		{"r", []string{`install.r_packages(["ggplot2"])`, `config.cran_mirror(url="https://cloud.r-project.org")`, `install.r_lang()`}, ir.Environment{
			R: &ir.R{Packages: pkgs(l2, "ggplot2"), CRANMirror: "https://cloud.r-project.org", Pos: l2},
		}},
		{"rstudio", []string{`base(dev=True)`, `config.rstudio_server()`}, ir.Environment{
			Base:    ir.Base{Image: ir.DefaultImage, Dev: true, Pos: l2},
			R:       &ir.R{RStudio: true, Pos: l3},
			Expose:  []ir.Expose{{EnvdPort: 8787, Service: "rstudio", Pos: l3}},
			Daemons: []ir.Daemon{{Command: rserver, Pos: l3}},
		}},
		{"julia", []string{`install.julia()`, `install.julia_packages(name=["Flux"])`, `config.julia_pkg_server(url="https://pkg.julialang.org")`}, ir.Environment{
			Julia: &ir.Julia{Packages: pkgs(l3, "Flux"), PkgServer: "https://pkg.julialang.org", Pos: l2},
		}},
		{"toolchains default versions", []string{`install.rust()`, `install.go()`, `install.nodejs(version=None)`}, ir.Environment{
			Rust: &ir.Toolchain{Version: "stable", Pos: l2}, Go: &ir.Toolchain{Version: "1.25.3", Pos: l3}, NodeJS: &ir.Toolchain{Version: "25.1.0", Pos: l4},
		}},
		// install.codex: None is the pinned default, as install.nodejs(version=None).
		{"install.codex default", []string{`install.codex()`}, ir.Environment{Codex: &ir.Toolchain{Version: "0.98.0", Pos: l2}}},
		{"install.codex None", []string{`install.codex(version=None)`}, ir.Environment{Codex: &ir.Toolchain{Version: "0.98.0", Pos: l2}}},
		{"install.codex version", []string{`install.codex(version="0.79.0")`}, ir.Environment{Codex: &ir.Toolchain{Version: "0.79.0", Pos: l2}}},
		{"install.codex positional pre-release", []string{`install.codex("0.46.0-alpha.1")`}, ir.Environment{Codex: &ir.Toolchain{Version: "0.46.0-alpha.1", Pos: l2}}},
		{"toolchains versions", []string{`install.rust("1.82.0")`, `install.go(version="1.24.1")`, `install.nodejs("22.11.0")`}, ir.Environment{
			Rust: &ir.Toolchain{Version: "1.82.0", Pos: l2}, Go: &ir.Toolchain{Version: "1.24.1", Pos: l3}, NodeJS: &ir.Toolchain{Version: "22.11.0", Pos: l4},
		}},
		{"io.http", []string{
			`io.http("https://example.com/a.tar", filename=None)`,
			`io.http(url="https://example.com/b", checksum="` + strings.Repeat("ab", 32) + `", filename="b.bin")`,
		}, ir.Environment{Downloads: []ir.Download{
			{URL: "https://example.com/a.tar", Pos: l2},
			{URL: "https://example.com/b", Checksum: "sha256:" + strings.Repeat("ab", 32), Filename: "b.bin", Pos: l3},
		}}},
		{"container settings", []string{`config.gpu(2)`, `config.shm_size(size=2048)`, `runtime.command(commands={"train": "python train.py"})`}, ir.Environment{
			Resources: &ir.Resources{GPUs: 2, ShmSizeMB: 2048, Pos: l2},
			Commands:  map[string]string{"train": "python train.py"},
		}},
		{"image settings", []string{
			`base(image="debian:bookworm")`,
			`config.entrypoint(["python3", "serve.py"])`,
			`config.repo(url="https://github.com/team/x", description="demo")`,
			`config.owner(uid=1001, gid=1002)`,
		}, ir.Environment{
			Base:       ir.Base{Image: "docker.io/library/debian:bookworm", Pos: l2},
			Entrypoint: &ir.Entrypoint{Args: []string{"python3", "serve.py"}, Pos: l3},
			Repo:       &ir.Repo{URL: "https://github.com/team/x", Description: "demo", Pos: l4},
			Owner:      &ir.Owner{UID: 1001, GID: 1002, Pos: at(5, 5)},
		}},
		{"data.envd", []string{`runtime.mount(host_path=data.envd("mnist"), envd_path="/data")`}, ir.Environment{
			Mounts: []ir.Mount{{HostPath: "~/.local/share/envd/data/mnist", EnvdPath: "/data", Pos: l2}},
		}},
		// data.path: the original's "~/..." caches, in the dev user's home.
		{"data.path", []string{
			`runtime.mount(host_path="~/.cache/huggingface", envd_path=data.path.huggingface)`,
			`runtime.mount("~/.dgl", data.path.dgl)`,
			`runtime.environ(env={"HF_HOME": data.path.huggingface})`,
		}, ir.Environment{
			Mounts: []ir.Mount{
				{HostPath: "~/.cache/huggingface", EnvdPath: "/home/envd/.cache/huggingface", Pos: l2},
				{HostPath: "~/.dgl", EnvdPath: "/home/envd/.dgl", Pos: l3},
			},
			Environ: map[string]string{"HF_HOME": "/home/envd/.cache/huggingface"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			if want.Base.Image == "" {
				want.Base = noBase
			}
			checkEnv(t, load(t, build(tt.stmts...)), &want)
		})
	}
}

// Positions point at the start of the call, also inside helper functions,
// and follow the file name given.
func TestPositions(t *testing.T) {
	src := "def build():\n    x = [\n        1]\n    helper(\"git\")\n\ndef helper(p):\n    if True:\n        install.apt_packages(\n            name=[p])\n"
	res, err := LoadSource("dir/my.envd", []byte(src), "")
	if err != nil {
		t.Fatal(err)
	}
	want := ir.Pos{File: "dir/my.envd", Line: 8, Col: 9}
	if got := res.Env.AptPackages[0].Pos; got != want {
		t.Errorf("pos %v, want %v", got, want)
	}
}

// envd's v1 API: every function exists with its parameter names, in the
// original's positional order (further parameters of ours come after them).
func TestAPICoverage(t *testing.T) {
	api := map[string][]string{
		"base":                      {"image", "dev"},
		"shell":                     {"name"},
		"run":                       {"commands", "mount_host"},
		"git_config":                {"name", "email", "editor"},
		"include":                   {"git"},
		"install.python":            {"version"},
		"install.conda":             {"use_mamba"},
		"install.uv":                {"python_version"},
		"install.pixi":              {"use_pixi_mirror", "pypi_index"},
		"install.r_lang":            nil,
		"install.julia":             nil,
		"install.apt_packages":      {"name"},
		"install.python_packages":   {"name", "requirements", "local_wheels"},
		"install.conda_packages":    {"name", "channel", "env_file"},
		"install.r_packages":        {"name"},
		"install.julia_packages":    {"name"},
		"install.vscode_extensions": {"name"},
		"install.cuda":              {"version", "cudnn"},
		"install.rust":              {"version"},
		"install.go":                {"version"},
		"install.nodejs":            {"version"},
		"install.codex":             {"version"},
		"config.apt_source":         {"source"},
		"config.jupyter":            {"token", "port"},
		"config.pip_index":          {"url", "extra_url", "trust"},
		"config.conda_channel":      {"channel"},
		"config.entrypoint":         {"args"},
		"config.gpu":                {"count"},
		"config.shm_size":           {"size"},
		"config.cran_mirror":        {"url"},
		"config.julia_pkg_server":   {"url"},
		"config.rstudio_server":     nil,
		"config.repo":               {"url", "description"},
		"config.owner":              {"uid", "gid"},
		"runtime.command":           {"commands"},
		"runtime.expose":            {"envd_port", "host_port", "service", "listen_addr"},
		"runtime.daemon":            {"commands"},
		"runtime.environ":           {"env", "extra_path"},
		"runtime.mount":             {"host_path", "envd_path"},
		"runtime.init":              {"commands"},
		"io.copy":                   {"source", "target", "image"},
		"io.http":                   {"url", "checksum", "filename"},
		"data.envd":                 {"name"},
	}
	declared := map[string][]string{}
	for _, b := range Builtins() {
		for _, p := range b.Params {
			declared[b.Name] = append(declared[b.Name], p.Name)
		}
		if b.Value == "" && declared[b.Name] == nil {
			declared[b.Name] = []string{}
		}
	}
	for name, params := range api {
		got, ok := declared[name]
		if !ok {
			t.Errorf("%s is missing", name)
			continue
		}
		if len(got) < len(params) || strings.Join(got[:len(params)], ", ") != strings.Join(params, ", ") {
			t.Errorf("%s takes (%s), want (%s) first", name, strings.Join(got, ", "), strings.Join(params, ", "))
		}
		// Calling with every parameter by keyword fails only on values,
		// never with "unexpected keyword argument".
		var kw []string
		for _, p := range params {
			kw = append(kw, p+"=None")
		}
		_, err := LoadSource(file, []byte(build(fmt.Sprintf("%s(%s)", name, strings.Join(kw, ", ")))), "")
		if err != nil && strings.Contains(err.Error(), "unexpected keyword") {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, name := range []string{"data.path.huggingface", "data.path.dgl"} {
		if _, ok := declared[name]; ok {
			t.Errorf("%s is a function; want a constant", name)
		}
	}
}

// No value, in any argument of any builtin, makes a builtin panic.
func TestNoPanics(t *testing.T) {
	values := []string{`None`, `True`, `0`, `-1`, `99999999999999999999`, `1.5`, `""`, `"x"`, `[]`, `[1]`, `[[1]]`, `[[]]`, `[None]`, `{}`, `{"a": [1]}`, `{1: "a"}`, `("a",)`, `set([1])`, `base`, `install`}
	var names []string
	for name, v := range predeclared {
		if m, ok := v.(*module); ok {
			for _, member := range m.names {
				names = append(names, name+"."+member)
			}
		} else {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		for _, v := range values {
			for _, call := range []string{name + "(" + v + ")", name + "(" + v + ", " + v + ")", name + "(name=" + v + ", commands=" + v + ")"} {
				_, err := LoadSource(file, []byte(build(call)), "")
				if err != nil && strings.Contains(err.Error(), "internal error") {
					t.Errorf("%s: %v", call, err)
				}
			}
		}
	}
}

// testdata/v1_api.envd calls every function of envd's v1 API: each is
// modelled (nothing left as an unmodelled call) and the file loads.
func TestV1APIFile(t *testing.T) {
	res, err := Load("testdata/v1_api.envd", "")
	if err != nil {
		t.Fatal(err)
	}
	env := res.Env
	if len(env.Calls) != 0 {
		t.Errorf("unmodelled calls: %+v", env.Calls)
	}
	set := map[string]bool{
		"conda": env.Conda != nil && len(env.Conda.Packages) == 1 && env.Conda.Channel != "",
		"uv":    env.UV != nil, "pixi": env.Pixi != nil && env.Pixi.UseMirror,
		"r":     env.R != nil && env.R.RStudio && env.R.CRANMirror != "" && len(env.R.Packages) == 1,
		"julia": env.Julia != nil && env.Julia.PkgServer != "" && len(env.Julia.Packages) == 1,
		"rust":  env.Rust != nil, "go": env.Go != nil, "nodejs": env.NodeJS != nil, "codex": env.Codex != nil,
		"resources": env.Resources != nil && env.Resources.GPUs == 1 && env.Resources.ShmSizeMB == 2048,
		"repo":      env.Repo != nil, "owner": env.Owner != nil, "commands": env.Commands["train"] != "",
		"downloads": len(env.Downloads) == 1, "mount": len(env.Mounts) == 3 && strings.HasPrefix(env.Mounts[0].HostPath, DataDir),
		"data.path":       len(env.Mounts) == 3 && env.Mounts[1].EnvdPath == "/home/envd/.cache/huggingface" && env.Mounts[2].EnvdPath == "/home/envd/.dgl",
		"cuda":            strings.Contains(env.Base.Image, "nvidia/cuda:12.4.1-devel-ubuntu22.04"),
		"copy from image": len(env.Steps) == 3 && env.Steps[1].Copy.Image == "docker.io/mambaorg/micromamba:1.0.0",
	}
	for what, ok := range set {
		if !ok {
			t.Errorf("%s not recorded: %s", what, js(env))
		}
	}

	res, err = Load("testdata/v1_api.envd", "serve")
	if err != nil {
		t.Fatal(err)
	}
	if ep := res.Env.Entrypoint; ep == nil || strings.Join(ep.Args, " ") != "python3 -m http.server" || res.Env.Base.Dev {
		t.Errorf("serve: %s", js(res.Env))
	}
}
