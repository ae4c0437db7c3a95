package lang

import (
	"errors"
	"strings"
	"testing"

	"envd.dev/envd/internal/ir"
)

// Every mistake a user can make: where it is reported and what it says.
func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		fn   string
		pos  ir.Pos
		want []string // in the error text, in order
	}{
		// 1. syntax
		// (The parser places the error at the end of the unexpected token.)
		{"syntax error", "def build(:\n    pass\n", "", at(1, 12), []string{"syntax error: got ':', want ')'"}},
		{"import", "import os\n" + build("pass"), "", at(1, 1), []string{"syntax error", "without import"}},
		{"f-string", build(`run(f"echo {x}")`), "", at(2, 20), []string{"syntax error", "no f-strings"}},

		// 2. unknown names
		{"unknown builtin", build(`bse(os="ubuntu20.04")`), "", at(2, 5), []string{`undefined: bse; did you mean "base"?`}},
		{"unknown module", build(`instal.python_packages(["x"])`), "", at(2, 5), []string{`undefined: instal; did you mean "install"?`}},
		{"member without module", build(`python_packages(["x"])`), "", at(2, 5), []string{`undefined: python_packages; did you mean "install.python_packages"?`}},
		{"misspelt global", build(`helpr()`) + "def helper():\n    pass\n", "", at(2, 5), []string{`undefined: helpr; did you mean "helper"?`}},

		// 3. unknown module member
		{"unknown member", build(`install.python_pakages(name=["x"])`), "", at(2, 5),
			[]string{`install has no function "python_pakages"; did you mean "python_packages"?`, "hint: install has apt_packages"}},
		{"unknown member far", build(`config.xyz()`), "", at(2, 5), []string{`config has no function "xyz"`, "config has apt_source"}},

		// 4. unknown keyword
		{"unknown keyword", build(`install.python_packages(nme=["x"])`), "", at(2, 5),
			[]string{`install.python_packages: unexpected keyword argument "nme"; did you mean "name"?`, `usage: install.python_packages(name=[], requirements="", local_wheels=[])`}},
		{"two values", build(`install.cuda("11.6", version="11.7")`), "", at(2, 5), []string{`install.cuda: got two values for argument "version"`}},
		{"alias twice", build(`io.copy(source="a", host_path="b", target="/x")`), "", at(2, 5), []string{`io.copy: got two values for argument "source"`}},
		{"too many positional", build(`install.cuda("11.6", "8", "x")`), "", at(2, 5), []string{"install.cuda: got 3 positional arguments, want at most 2", `usage: install.cuda(version, cudnn="8")`}},

		// 5. wrong types
		{"not a list", build(`install.python_packages(name=3)`), "", at(2, 5), []string{"install.python_packages: name must be a list of strings, got int"}},
		{"not a string in list", build(`install.apt_packages(["git", 3])`), "", at(2, 5), []string{"install.apt_packages: name[1] must be a string, got int"}},
		{"not a bool", build(`base(image="debian:bookworm", dev="yes")`), "", at(2, 5), []string{"base: dev must be True or False, got string"}},
		{"not an int", build(`runtime.expose(envd_port="http")`), "", at(2, 5), []string{`runtime.expose: envd_port must be an integer, got string "http"`}},
		{"not a dict", build(`runtime.environ(env=["A=1"])`), "", at(2, 5), []string{"runtime.environ: env must be a dict of strings, got list"}},
		{"daemon flat list", build(`runtime.daemon(commands=["streamlit", "run", "app.py"])`), "", at(2, 5),
			[]string{`runtime.daemon: commands[0] must be a list of strings, got string "streamlit"`, `[["python3", "-m", "http.server"]]`}},
		{"required None", build(`install.cuda(None)`), "", at(2, 5), []string{"install.cuda: version must be a string, got NoneType"}},

		// 6. missing argument
		{"missing argument", build(`install.cuda(cudnn="8")`), "", at(2, 5), []string{`install.cuda: missing required argument "version"`}},
		{"missing argument io.copy", build(`io.copy("a")`), "", at(2, 5), []string{`io.copy: missing required argument "target"`}},

		// 7. no build function
		{"no build", "def buid():\n    pass\ndef other():\n    pass\n", "", ir.Pos{File: file},
			[]string{`build.envd: no function "build"; define def build(): ... or pass -f build.envd:NAME`, `did you mean "buid"?`, `build.envd defines "buid", "other"`}},
		{"no such function", build("pass"), "main", ir.Pos{File: file}, []string{`no function "main"; define def main(): ... or pass -f build.envd:NAME`, `build.envd defines "build"`}},
		{"empty file", "", "", ir.Pos{File: file}, []string{`no function "build"`, "build.envd defines no functions"}},
		{"build not a function", "build = 3\n", "", ir.Pos{File: file}, []string{`"build" is a value of type int, not a function`}},
		{"build with parameters", "def build(gpu):\n    pass\n", "", at(1, 11), []string{`build() must take no arguments, but parameter "gpu" has no default`}},

		// 8. runtime errors in user code, at the innermost frame in the file
		{"division by zero", build("x = 1", "y = x / 0"), "", at(3, 11), []string{"division by zero"}},
		{"fail", build(`fail("no GPU here")`), "", at(2, 5), []string{"fail: no GPU here"}},
		{"fail in helper", build("helper()") + "def helper():\n    fail(\"x\")\n", "", at(4, 5), []string{"fail: x"}},
		{"builtin error in helper", build("helper()") + "def helper():\n    install.python_packages(name=3)\n", "", at(4, 5), []string{"install.python_packages: name must be"}},
		{"unknown member in helper", build("helper()") + "def helper():\n    x = 1\n    runtime.expse(8080)\n", "", at(5, 5), []string{`runtime has no function "expse"; did you mean "expose"?`}},
		{"error at top level", "x = {}[\"k\"]\n" + build("pass"), "", at(1, 7), []string{`key "k" not in dict`}},
		{"method on list", build("x = []", "x.push(1)"), "", at(3, 5), []string{"list has no .push field or method"}},
		{"endless recursion", build("build()"), "", at(2, 5), []string{"stack overflow", "calls itself"}},
		{"include nothing", `lib = include()` + "\n" + build("pass"), "", at(1, 7), []string{"include: give git (a repository) or path (a .envd file)"}},
		{"include ref without git", `lib = include(ref="v1")` + "\n" + build("pass"), "", at(1, 7), []string{"include: ref needs git"}},
		{"include missing file", `lib = include(path="nowhere.envd")` + "\n" + build("pass"), "", at(1, 7), []string{"include: cannot read nowhere.envd: no such file or directory"}},
		{"load", "load(\"lib.envd\", \"f\")\n" + build("pass"), "", at(1, 1), []string{"load() is not supported", "include(path="}},

		// checks of the builtins
		{"base twice", build(`base(os="ubuntu20.04")`, `base(image="ubuntu:22.04")`), "", at(3, 5), []string{"base() already called at build.envd:2:5"}},
		{"build called at top level", build(`base(os="ubuntu20.04")`) + "build()\n", "", at(2, 5), []string{"base() already called at build.envd:2:5", "ran twice"}},
		{"os and image", build(`base(os="ubuntu20.04", image="ubuntu:22.04")`), "", at(2, 5), []string{"base: give os or image, not both"}},
		{"unknown os", build(`base(os="ubuntu2004")`), "", at(2, 5), []string{`base: unknown os "ubuntu2004"`, `did you mean "ubuntu20.04"?`}},
		{"unknown os positional", build(`base("ubuntu2204")`), "", at(2, 5), []string{`base: unknown os "ubuntu2204"`, `did you mean "ubuntu22.04"?`}},
		{"os name as image", build(`base(image="ubuntu22.04")`), "", at(2, 5),
			[]string{`base: image "ubuntu22.04" is an os name, not an image`, `hint: write base(os="ubuntu22.04"), or an image such as base(image="ubuntu:22.04")`}},
		{"v1 image with a language", build(`base("ubuntu:22.04", "python3")`), "", at(2, 5), []string{`base: unknown os "ubuntu:22.04"`, "base(image=...)"}},
		{"unknown language", build(`base(os="ubuntu20.04", language="python2")`), "", at(2, 5), []string{`base: unknown language "python2"`}},
		{"python versions differ", build(`base(os="ubuntu20.04", language="python3.9")`, `install.python("3.11")`), "", at(3, 5),
			[]string{"python 3.11 requested here, but base() at build.envd:2:5 already asked for python 3.9"}},
		{"install.python twice", build(`install.python("3.10")`, `install.python("3.11")`), "", at(3, 5), []string{"install.python() at build.envd:2:5 already asked for python 3.10"}},
		{"cuda twice", build(`install.cuda("11.6")`, `install.cuda("12.1")`), "", at(3, 5), []string{"install.cuda() already called at build.envd:2:5"}},
		{"bad cuda version", build(`install.cuda("latest")`), "", at(2, 5), []string{`install.cuda: "latest" is not a CUDA version`}},
		{"unknown shell", build(`shell("pwsh")`), "", at(2, 5), []string{`shell: unknown shell "pwsh"`, `"bash"`}},
		{"bad env name", build(`runtime.environ(env={"MY-VAR": "1"})`), "", at(2, 5), []string{`runtime.environ: invalid environment variable name "MY-VAR"`}},
		{"bad env value", build(`runtime.environ(env={"A": [1]})`), "", at(2, 5), []string{`runtime.environ: env["A"] must be a string, got list`}},
		{"bad listen addr", build(`runtime.expose(8080, listen_addr="localhost")`), "", at(2, 5), []string{`listen_addr "localhost" is not an IP address`}},
		{"jupyter port", build(`config.jupyter(port=70000)`), "", at(2, 5), []string{"config.jupyter: port 70000 is out of range"}},
		{"jupyter port negative", build(`config.jupyter(port=-1)`), "", at(2, 5), []string{"config.jupyter: port -1 is out of range", "0 for a free one"}},
		{"empty pip index", build(`config.pip_index(url="")`), "", at(2, 5), []string{"config.pip_index: url is empty"}},
		{"gpu count", build(`config.gpu(0)`), "", at(2, 5), []string{"config.gpu: count 0 is not a number of GPUs"}},
		{"shm size", build(`config.shm_size(-5)`), "", at(2, 5), []string{"config.shm_size: size -5 is not a size"}},
		{"owner", build(`config.owner(uid=-1, gid=0)`), "", at(2, 5), []string{"config.owner: uid -1, gid 0"}},
		{"command name", build(`runtime.command(commands={"a\nb": "x"})`), "", at(2, 5), []string{`runtime.command: invalid command name "a\nb"`}},
		{"data name", build(`runtime.mount(data.envd("../x"), "/data")`), "", at(2, 19), []string{`data.envd: "../x" is not a dataset name`}},
		{"relative mount target", build(`runtime.mount("~/data", "data")`), "", at(2, 5),
			[]string{`runtime.mount: envd_path "data" is not an absolute path`, `hint: give an absolute path such as "/home/envd/data", or "~/data"`}},
		{"relative mount target v0", build(`io.mount(src="~/data", dest="")`), "", at(2, 5), []string{`io.mount: envd_path "" is not an absolute path`}},
		{"go twice", build(`install.go()`, `install.go("1.24.1")`), "", at(3, 5), []string{"install.go() already called at build.envd:2:5"}},
		{"bad image", build(`io.copy("/bin/micromamba", "/usr/local/bin/micromamba", image="Mambaorg/micromamba:1.0.0")`), "", at(2, 5),
			[]string{`io.copy: image "Mambaorg/micromamba:1.0.0" is not an image reference`, "must be lowercase", `hint: give an image reference such as "mambaorg/micromamba:1.0.0"`}},
		{"shell in image", build(`io.copy("/x", "/x", image="ubuntu:22.04; rm -rf /")`), "", at(2, 5), []string{`io.copy: image "ubuntu:22.04; rm -rf /" is not an image reference`, "hint: give an image reference"}},
		{"bad image in helper", build("helper()") + "def helper():\n    io.copy(\"/x\", \"/x\", image=\"a b\")\n", "", at(4, 5), []string{`io.copy: image "a b" is not an image reference`}},
		{"data.path misspelt", build(`runtime.mount("/x", data.path.hugginface)`), "", at(2, 25),
			[]string{`data.path has no path "hugginface"; did you mean "huggingface"?`, "hint: data.path has dgl, huggingface"}},
		{"codex twice", build(`install.codex()`, `install.codex("0.79.0")`), "", at(3, 5), []string{"install.codex() already called at build.envd:2:5"}},
		{"two env files", build(`install.conda_packages(env_file="a.yml")`, `install.conda_packages(env_file="b.yml")`), "", at(3, 5), []string{"env_file already given at build.envd:2:5"}},

		// 9. ir.Validate, with the position of the call (of the entry for python packages)
		{"bad python package", build(`install.python_packages(name=["numpy", "numpy=1.2"])`), "", at(2, 44), []string{`invalid python requirement "numpy=1.2"`}},
		{"shell in python package", build(`install.python_packages(name=["numpy; rm -rf /"])`), "", at(2, 35), []string{`entry "numpy; rm -rf /" holds ";"`, "never to a shell"}},
		{"bad apt package", build(`install.apt_packages(["Git"])`), "", at(2, 5), []string{`invalid apt package name "Git"`}},
		{"bad python version", build(`install.python("3.x")`), "", at(2, 5), []string{`python version "3.x" is not a Python 3 version`}},
		{"empty run", build(`base(os="ubuntu20.04")`, "run([])"), "", at(3, 5), []string{"run() has no commands"}},
		{"absolute copy source", build(`io.copy("/etc/passwd", "/x")`), "", at(2, 5), []string{`copy source "/etc/passwd" is absolute`, "for a path in an image, give image= too"}},
		{"expose port range", build(`runtime.expose(0)`), "", at(2, 5), []string{"envd_port 0 is out of range"}},
		{"empty daemon", build(`runtime.daemon([[]])`), "", at(2, 5), []string{"empty command"}},
		{"bad conda package", build(`install.conda_packages(["numpy; rm -rf /"])`), "", at(2, 5), []string{`invalid conda package "numpy; rm -rf /"`}},
		{"bad R package", build(`install.r_packages(["gg plot"])`), "", at(2, 5), []string{`invalid R package "gg plot"`}},
		{"bad Julia package", build(`install.julia_packages(["Flux$(x)"])`), "", at(2, 5), []string{`invalid Julia package "Flux$(x)"`}},
		{"bad go version", build(`install.go("latest")`), "", at(2, 5), []string{`"latest" is not a Go version`}},
		{"codex latest", build(`base(os="ubuntu22.04")`, `install.codex(version="latest")`), "", at(3, 5),
			[]string{`"latest" is not a Codex version`, `hint: write it as "0.98.0": the number of a release of github.com/openai/codex`, "leave version out"}},
		{"codex tag", build(`install.codex("rust-v0.98.0")`), "", at(2, 5), []string{`"rust-v0.98.0" is not a Codex version`, `without its tag's "rust-v"`}},
		{"codex shell", build(`install.codex("0.98.0; curl evil | sh")`), "", at(2, 5), []string{`"0.98.0; curl evil | sh" is not a Codex version`}},
		{"copy from image relative", build(`io.copy("bin/micromamba", "/usr/local/bin/micromamba", image="mambaorg/micromamba:1.0.0")`), "", at(2, 5),
			[]string{`copy source "bin/micromamba" is not an absolute path (in the image docker.io/mambaorg/micromamba:1.0.0)`, `hint: give the absolute path of the file or directory in the image`}},
		{"copy from image empty", build(`io.copy("", "/x", image="busybox")`), "", at(2, 5), []string{`copy source "" is not an absolute path`}},
		{"bad checksum", build(`io.http("https://x.example/a", checksum="md5:1")`), "", at(2, 5), []string{`invalid checksum "md5:1"`}},
		{"http not a URL", build(`io.http("ftp://x.example/a")`), "", at(2, 5), []string{`"ftp://x.example/a" is not an http(s) URL`}},
		{"entrypoint in dev", build(`base(os="debian12")`, `config.entrypoint(["python3"])`), "", at(3, 5), []string{"config.entrypoint applies to images without dev"}},
		{"rstudio not dev", build(`base(image="ubuntu:22.04")`, `config.rstudio_server()`), "", at(3, 5), []string{"config.rstudio_server needs a dev environment"}},
		{"rstudio without base(): not dev, as in v1", build(`config.rstudio_server()`), "", at(2, 5), []string{"config.rstudio_server needs a dev environment", "base(dev=True)"}},
		{"rstudio bare base(): not dev, as in v1", build(`base()`, `config.rstudio_server()`), "", at(3, 5), []string{"config.rstudio_server needs a dev environment"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadSource(file, []byte(tt.src), tt.fn)
			if err == nil {
				t.Fatalf("no error; want %q", tt.want)
			}
			var e *ir.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not an *ir.Error: %v", err, err)
			}
			if e.Pos != tt.pos {
				t.Errorf("position %v, want %v (error: %v)", e.Pos, tt.pos, err)
			}
			text := err.Error()
			if !strings.HasPrefix(text, tt.pos.String()+": ") {
				t.Errorf("error does not start with its position %s: %q", tt.pos, text)
			}
			rest := text
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Errorf("error lacks %q (in order):\n%s", w, text)
					break
				}
				rest = rest[i+len(w):]
			}
		})
	}
}

// An endless loop ends with an error instead of hanging.
func TestStepLimit(t *testing.T) {
	src := build("n = 0", "while True:", "    n += 1")
	_, err := Loader{MaxSteps: 10_000}.LoadSource(file, []byte(src), "")
	var e *ir.Error
	if !errors.As(err, &e) || !strings.Contains(e.Msg, "build file ran too long (more than 10000 steps) in build()") || e.Pos.Line == 0 {
		t.Fatalf("got %v", err)
	}
	// The default limit applies too.
	_, err = LoadSource(file, []byte(src), "")
	if err == nil || !strings.Contains(err.Error(), "ran too long") {
		t.Fatalf("got %v", err)
	}
}
