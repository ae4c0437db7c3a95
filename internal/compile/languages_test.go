package compile

import (
	"context"
	"strings"
	"testing"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"envd.dev/envd/internal/ir"
	"envd.dev/envd/internal/lang"
)

// languagesEnv asks for every language languageSteps installs.
func languagesEnv() *ir.Environment {
	env := pythonEnv()
	env.R = &ir.R{Packages: []ir.Package{{Name: "ggplot2", Pos: pos(6)}}, CRANMirror: "http://127.0.0.1:8080/cran", Pos: pos(5)}
	env.Julia = &ir.Julia{Packages: []ir.Package{{Name: "Flux", Pos: pos(7)}, {Name: "DataFrames.jl", Pos: pos(7)}}, PkgServer: "http://127.0.0.1:8081", Pos: pos(7)}
	env.Rust = &ir.Toolchain{Version: "1.82.0", Pos: pos(8)}
	env.Go = &ir.Toolchain{Version: "1.25.3", Pos: pos(9)}
	env.NodeJS = &ir.Toolchain{Version: "22.11.0", Pos: pos(10)}
	env.UV = &ir.UV{Pos: pos(11)}
	env.Pixi = &ir.Pixi{UseMirror: true, PyPIIndex: "http://127.0.0.1:8080/simple", Pos: pos(12)}
	env.Steps = []ir.Step{{Run: &ir.RunStep{Commands: []string{"cargo --version"}}, Pos: pos(13)}}
	return env
}

// source returns the one source op whose identifier is id.
func (g *graph) source(t *testing.T, id string) *pb.SourceOp {
	t.Helper()
	for _, op := range g.list {
		if s := op.GetSource(); s != nil && s.Identifier == id {
			return s
		}
	}
	t.Fatalf("no source %q", id)
	return nil
}

// opOf returns the op holding e.
func (g *graph) opOf(e *pb.ExecOp) *pb.Op {
	for _, op := range g.list {
		if op.GetExec() == e {
			return op
		}
	}
	return nil
}

// mountsSource reports whether e mounts the source op src (a download).
func (g *graph) mountsSource(e *pb.ExecOp, src *pb.SourceOp) bool {
	op := g.opOf(e)
	for _, m := range e.Mounts {
		if m.Input < 0 || int(m.Input) >= len(op.Inputs) {
			continue
		}
		if in := g.ops[digest.Digest(op.Inputs[m.Input].Digest)]; in != nil && in.GetSource() == src {
			return m.Dest == downloadDir && m.Readonly
		}
	}
	return false
}

func TestLanguageStagesAreParallelBranches(t *testing.T) {
	g, _ := compileGraph(t, languagesEnv(), Options{})

	apt := strings.Join(g.exec(t, "r-base-dev").Meta.Args, " ")
	for _, p := range []string{" ca-certificates", " gcc", " libc6-dev", " r-base "} {
		if !strings.Contains(apt, p) {
			t.Errorf("language packages lack %s: %s", p, apt)
		}
	}

	var merge *pb.MergeOp
	for _, op := range g.list {
		if m := op.GetMerge(); m != nil && len(m.Inputs) == 8 {
			merge = m
		}
	}
	if merge == nil {
		t.Fatal("want a merge of the language packages + 7 branches (R, Julia, Rust, Go, Node.js, uv, pixi)")
	}
	rust, golang := g.exec(t, "rustup-init"), g.exec(t, "-C "+goRoot)
	if dependsOn(g, rust, golang) || dependsOn(g, golang, rust) {
		t.Error("rust and go are chained, want independent branches")
	}
	if run := g.exec(t, "cargo --version"); !dependsOn(g, run, rust) || !dependsOn(g, run, golang) {
		t.Error("run() steps do not come after the languages")
	}

	// Each toolchain comes from its official download, mounted, not copied.
	for _, tt := range []struct{ exec, url string }{
		{"rustup-init -y -q --no-modify-path --profile minimal --default-toolchain 1.82.0", rustupURL(LinuxAMD64)},
		{"-C /usr/local/go --strip-components=1", "https://go.dev/dl/go1.25.3.linux-amd64.tar.gz"},
		{"-C /opt/nodejs --strip-components=1", "https://nodejs.org/dist/v22.11.0/node-v22.11.0-linux-x64.tar.gz"},
		{"-C /opt/julia --strip-components=1", "https://julialang-s3.julialang.org/bin/linux/x64/1.10/julia-1.10.7-linux-x86_64.tar.gz"},
		{"-C /usr/local/bin --strip-components=0", "https://github.com/prefix-dev/pixi/releases/download/v0.48.0/pixi-x86_64-unknown-linux-musl.tar.gz"},
	} {
		if !g.mountsSource(g.exec(t, tt.exec), g.source(t, tt.url)) {
			t.Errorf("%q does not mount %s at %s", tt.exec, tt.url, downloadDir)
		}
	}

	julia := g.exec(t, "Pkg.add")
	if args := strings.Join(julia.Meta.Args, " "); !strings.Contains(args, `Pkg.add(["DataFrames", "Flux"])`) {
		t.Errorf("julia packages: %q", args)
	}
	if envOf(julia.Meta.Env, "JULIA_PKG_SERVER") != "http://127.0.0.1:8081" || envOf(julia.Meta.Env, "JULIA_DEPOT_PATH") != juliaDepot {
		t.Errorf("julia env %q", julia.Meta.Env)
	}

	uv := g.exec(t, "pip install --disable-pip-version-check uv")
	if m := cacheMounts(uv)[pipCacheTarget]; m == nil || m.ID != PipCacheID {
		t.Errorf("uv is not installed through the pip cache: %+v", uv.Mounts)
	}

	run := g.exec(t, "cargo --version")
	path := envOf(run.Meta.Env, "PATH")
	for _, dir := range []string{cargoHome + "/bin", goRoot + "/bin", nodeRoot + "/bin", juliaRoot + "/bin"} {
		if !strings.Contains(path, dir) {
			t.Errorf("run steps' PATH %q lacks %s", path, dir)
		}
	}
	if !strings.HasPrefix(path, VenvDir+"/bin:") || envOf(run.Meta.Env, "RUSTUP_HOME") != rustupHome {
		t.Errorf("run env %q", run.Meta.Env)
	}
}

func TestRPackagesUseTheMirrorAndACache(t *testing.T) {
	g, _ := compileGraph(t, languagesEnv(), Options{})
	e := g.exec(t, "install.packages")
	if args := e.Meta.Args; len(args) != 5 || args[0] != "Rscript" || args[2] != rInstall || args[3] != "http://127.0.0.1:8080/cran" || args[4] != "ggplot2" {
		t.Errorf("R args %q", args)
	}
	if m := cacheMounts(e)[rDownloads]; m == nil || m.ID != rDownloadsID || m.Sharing != pb.CacheSharingOpt_LOCKED {
		t.Errorf("R downloads cache %+v", m)
	}
	profile := g.exec(t, "Rprofile.site")
	if !dependsOn(g, e, profile) || !strings.Contains(strings.Join(profile.Meta.Args, " "), `options(repos = c(CRAN = "http://127.0.0.1:8080/cran"))`) {
		t.Errorf("mirror step %q", profile.Meta.Args)
	}
}

func TestRStudioServer(t *testing.T) {
	env := devEnv()
	env.Base.Image = "docker.io/library/ubuntu:20.04"
	env.R = &ir.R{RStudio: true}
	g, _ := compileGraph(t, env, Options{})
	e := g.exec(t, "rstudio-server.deb")
	if !g.mountsSource(e, g.source(t, "https://download2.rstudio.org/server/focal/amd64/rstudio-server-"+rstudioDeb+"-amd64.deb")) {
		t.Error("the .deb is not mounted from its download")
	}
	if m := cacheMounts(e)["/var/cache/apt"]; m == nil || m.ID != AptArchivesID {
		t.Errorf("apt cache %+v", m)
	}
}

func TestDevUserOwnsToolchains(t *testing.T) {
	env := devEnv()
	env.Rust = &ir.Toolchain{Version: "stable"}
	env.NodeJS = &ir.Toolchain{Version: "22.11.0"}
	env.Go = &ir.Toolchain{Version: "1.25.3"}
	env.UV = &ir.UV{}
	g, _ := compileGraph(t, env, Options{})
	for s, want := range map[string]string{
		"rustup-init":    "chown -R 1000:1000 /opt/rust",
		"-C " + nodeRoot: "chown -R 1000:1000 /opt/nodejs",
		"pip install --disable-pip-version-check uv": "find " + VenvDir + " ! -user 1000 -exec chown -h 1000:1000 {} +",
	} {
		if args := strings.Join(g.exec(t, s).Meta.Args, " "); !strings.Contains(args, want) {
			t.Errorf("%s step lacks %q: %s", s, want, args)
		}
	}
	if args := strings.Join(g.exec(t, "-C "+goRoot).Meta.Args, " "); strings.Contains(args, "chown") {
		t.Errorf("go is root's, got %s", args)
	}
	// A dev image already has ca-certificates: no second apt step.
	for _, op := range g.list {
		if e := op.GetExec(); e != nil && strings.Contains(strings.Join(e.Meta.Args, " "), "language packages") {
			t.Errorf("unneeded language apt step %q", e.Meta.Args)
		}
	}
}

func TestPixiConfig(t *testing.T) {
	tests := []struct {
		pixi ir.Pixi
		want string
	}{
		{ir.Pixi{}, ""},
		{ir.Pixi{UseMirror: true}, "[mirrors]\n\"https://conda.anaconda.org\" = [\"https://prefix.dev/\"]\n"},
		{ir.Pixi{UseMirror: true, PyPIIndex: "https://m/simple"}, "[mirrors]\n\"https://conda.anaconda.org\" = [\"https://prefix.dev/\"]\n\n[pypi-config]\nindex-url = \"https://m/simple\"\n"},
	}
	for _, tt := range tests {
		if got := pixiConfig(&tt.pixi); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.pixi, got, tt.want)
		}
	}
}

func TestDownloads(t *testing.T) {
	sum := "sha256:" + strings.Repeat("ab", 32)
	env := devEnv()
	env.Downloads = []ir.Download{
		{URL: "https://example.com/data/mnist.tar.gz", Checksum: sum, Pos: pos(5)},
		{URL: "https://example.com/x?y=1", Filename: "x.bin", Pos: pos(6)},
	}
	g, _ := compileGraph(t, env, Options{})
	if s := g.source(t, "https://example.com/data/mnist.tar.gz"); s.Attrs[pb.AttrHTTPChecksum] != sum || s.Attrs[pb.AttrHTTPFilename] != "mnist.tar.gz" {
		t.Errorf("download attrs %v", s.Attrs)
	}
	if s := g.source(t, "https://example.com/x?y=1"); s.Attrs[pb.AttrHTTPChecksum] != "" || s.Attrs[pb.AttrHTTPFilename] != "x.bin" {
		t.Errorf("download attrs %v", s.Attrs)
	}
	var copies []*pb.FileActionCopy
	for _, op := range g.list {
		if f := op.GetFile(); f != nil {
			for _, a := range f.Actions {
				if cp := a.GetCopy(); cp != nil && strings.HasPrefix(cp.Dest, ir.DownloadDir) {
					copies = append(copies, cp)
				}
			}
		}
	}
	if len(copies) != 2 || copies[0].Dest != ir.DownloadDir+"/mnist.tar.gz" || copies[1].Dest != ir.DownloadDir+"/x.bin" {
		t.Fatalf("copies %+v", copies)
	}
	if u := copies[0].Owner.GetUser().GetByID(); u != DevUID {
		t.Errorf("download owned by %d, want the dev user", u)
	}
}

func TestNoLanguagesNoSteps(t *testing.T) {
	g, _ := compileGraph(t, pythonEnv(), Options{})
	for _, op := range g.list {
		if m := op.GetMerge(); m != nil && len(m.Inputs) != 3 {
			t.Errorf("unexpected merge %+v", m)
		}
		if e := op.GetExec(); e != nil && strings.Contains(strings.Join(e.Meta.Args, " "), downloadDir) {
			t.Errorf("unexpected language step %q", e.Meta.Args)
		}
	}
}

func TestLanguageConfig(t *testing.T) {
	env := languagesEnv()
	env.Conda = &ir.Conda{}
	env.Entrypoint = &ir.Entrypoint{Args: []string{"python3", "serve.py"}}
	env.Repo = &ir.Repo{URL: "https://github.com/team/x", Description: "demo"}
	c := &compiler{env: env}
	img := ocispecs.Image{}
	img.Config.Env = []string{"PATH=" + VenvDir + "/bin:/usr/bin:/bin", "A=1"}
	img.Config.Cmd = []string{"/bin/bash"}
	c.languageConfig(&img)

	wantPath := VenvDir + "/bin:" + condaRoot + "/bin:" + cargoHome + "/bin:" + goRoot + "/bin:" + nodeRoot + "/bin:" + juliaRoot + "/bin:/usr/bin:/bin"
	if p := envOf(img.Config.Env, "PATH"); p != wantPath {
		t.Errorf("PATH %q\nwant %q", p, wantPath)
	}
	for k, v := range map[string]string{"A": "1", "MAMBA_ROOT_PREFIX": condaRoot, "CARGO_HOME": cargoHome, "JULIA_PKG_SERVER": "http://127.0.0.1:8081"} {
		if envOf(img.Config.Env, k) != v {
			t.Errorf("%s = %q, want %q", k, envOf(img.Config.Env, k), v)
		}
	}
	if strings.Join(img.Config.Entrypoint, " ") != "python3 serve.py" || img.Config.Cmd != nil {
		t.Errorf("entrypoint %q cmd %q", img.Config.Entrypoint, img.Config.Cmd)
	}
	if img.Config.Labels[LabelSource] != "https://github.com/team/x" || img.Config.Labels[LabelDescription] != "demo" {
		t.Errorf("labels %v", img.Config.Labels)
	}
	// Applying it twice changes nothing: PATH entries are not repeated.
	again := img
	again.Config.Env = append([]string(nil), img.Config.Env...)
	c.languageConfig(&again)
	if envOf(again.Config.Env, "PATH") != wantPath {
		t.Errorf("PATH repeated: %q", envOf(again.Config.Env, "PATH"))
	}
}

// marshalState is compileGraph for a state built by one compiler method.
func marshalState(t *testing.T, st llb.State) *graph {
	t.Helper()
	def, err := st.Marshal(context.Background(), llb.LinuxAmd64)
	if err != nil {
		t.Fatal(err)
	}
	g := &graph{ops: map[digest.Digest]*pb.Op{}}
	for _, dt := range def.Def {
		var op pb.Op
		if err := op.UnmarshalVT(dt); err != nil {
			t.Fatal(err)
		}
		g.ops[digest.FromBytes(dt)] = &op
		g.list = append(g.list, &op)
	}
	return g
}

func TestCondaRuntime(t *testing.T) {
	env := pythonEnv()
	env.Python.Version = "3.12"
	env.Conda = &ir.Conda{
		Packages: []ir.Package{{Name: "pytorch", Pos: pos(6)}, {Name: "numpy>=1.26", Pos: pos(6)}},
		Channels: []string{"pytorch"},
		Channel:  "channels:\n  - https://mirror.example/conda-forge\n",
		EnvFile:  &ir.File{Path: "environment.yml", Pos: pos(7)},
		Pos:      pos(5),
	}
	c := &compiler{env: env, opts: Options{Project: "demo", Platform: LinuxAMD64}}
	g := marshalState(t, c.condaRuntime(c.prepare(c.base())))

	e := g.exec(t, "micromamba create")
	script := e.Meta.Args[2]
	for _, want := range []string{
		"ln -sf micromamba /opt/conda/bin/conda",
		"/opt/conda/bin/micromamba create -y -p " + VenvDir + " --always-copy -c pytorch 'python=3.12' pip 'numpy>=1.26' pytorch",
		"install -y -p " + VenvDir + " --always-copy -f " + mountDir + "/conda/environment.yml",
	} {
		if !strings.Contains(script, want) {
			t.Errorf("conda script lacks %q:\n%s", want, script)
		}
	}
	if m := cacheMounts(e)[condaRoot+"/pkgs"]; m == nil || m.ID != CondaPkgsID || m.Sharing != pb.CacheSharingOpt_LOCKED {
		t.Errorf("conda pkgs cache %+v", m)
	}
	if envOf(e.Meta.Env, "MAMBA_ROOT_PREFIX") != condaRoot {
		t.Errorf("env %q", e.Meta.Env)
	}
	g.source(t, micromambaURL(LinuxAMD64))
	g.exec(t, "ca-certificates")
	var condarc string
	for _, op := range g.list {
		if f := op.GetFile(); f != nil {
			for _, a := range f.Actions {
				if mk := a.GetMkfile(); mk != nil && mk.Path == condaRoot+"/.condarc" {
					condarc = string(mk.Data)
				}
			}
		}
	}
	if condarc != env.Conda.Channel {
		t.Errorf(".condarc = %q", condarc)
	}

	// Without a Python version, the distribution's: the labels stay true.
	env.Python.Version = ""
	if got := c.condaPython(); got != "3.11" {
		t.Errorf("conda python %q, want debian 12's 3.11", got)
	}
}

// The file that calls every v1 function compiles, with every language.
func TestV1APIFileCompiles(t *testing.T) {
	res, err := lang.Load("../lang/testdata/v1_api.envd", "")
	if err != nil {
		t.Fatal(err)
	}
	g, img := compileGraph(t, res.Env, Options{})
	for _, s := range []string{"rustup-init", "-C " + goRoot, "-C " + nodeRoot, codexBin, "Pkg.add", "install.packages", "rstudio-server.deb", "pip install --disable-pip-version-check --index-url https://pypi.org/simple uv"} {
		g.exec(t, s)
	}
	g.source(t, "https://example.com/weights.bin")
	g.source(t, "docker-image://docker.io/mambaorg/micromamba:1.0.0")
	if img.Config.Config.Labels == nil {
		t.Error("no labels")
	}
}

// install.codex: the release's static binary, fetched by BuildKit and
// mounted, becomes /usr/bin/codex in a branch of its own.
func TestCodex(t *testing.T) {
	env := pythonEnv()
	env.Codex = &ir.Toolchain{Version: "0.79.0", Pos: pos(5)}
	env.NodeJS = &ir.Toolchain{Version: "22.11.0", Pos: pos(6)}
	env.Steps = []ir.Step{{Run: &ir.RunStep{Commands: []string{"codex --version"}}, Pos: pos(7)}}
	g, _ := compileGraph(t, env, Options{})

	url := "https://github.com/openai/codex/releases/download/rust-v0.79.0/codex-x86_64-unknown-linux-musl.tar.gz"
	codex := g.exec(t, "mv /tmp/envd-codex/codex-x86_64-unknown-linux-musl /usr/bin/codex")
	if !g.mountsSource(codex, g.source(t, url)) {
		t.Errorf("the codex step does not mount %s at %s", url, downloadDir)
	}
	script := strings.Join(codex.Meta.Args, " ")
	for _, w := range []string{"tar -xzf " + downloadDir + "/archive.tar.gz -C /tmp/envd-codex --no-same-owner", "chmod 0755 /usr/bin/codex", "rm -rf /tmp/envd-codex"} {
		if !strings.Contains(script, w) {
			t.Errorf("codex script lacks %q: %s", w, script)
		}
	}
	// The version reaches BuildKit's download only, never a shell.
	if strings.Contains(script, "0.79.0") {
		t.Errorf("the version is in the script: %s", script)
	}
	// Codex calls its API over TLS.
	g.exec(t, "apt-get install -y -q --no-install-recommends ca-certificates")
	node := g.exec(t, "-C "+nodeRoot)
	if dependsOn(g, codex, node) || dependsOn(g, node, codex) {
		t.Error("codex and nodejs are chained, want independent branches")
	}
	if run := g.exec(t, "codex --version"); !dependsOn(g, run, codex) {
		t.Error("run() steps do not come after codex")
	}

	plan, err := Plan(context.Background(), env, Options{Platform: LinuxAMD64, Project: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"codex 0.79.0 [build.envd:5:5]", "download " + url} {
		if !strings.Contains(plan, w) {
			t.Errorf("plan lacks %q:\n%s", w, plan)
		}
	}
}
