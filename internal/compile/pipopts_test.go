package compile

import (
	"context"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	digest "github.com/opencontainers/go-digest"

	"envd.dev/envd/internal/ir"
	"envd.dev/envd/internal/lang"
)

const (
	cpuIndex = "https://download.pytorch.org/whl/cpu"
	cu118    = "https://download.pytorch.org/whl/cu118"
	// A valid URL with characters a shell would expand unquoted.
	globLinks = "https://wheels.example/~team/links.html?page=*"
)

// optionsEnv is pythonEnv behind a mirror, with every option an entry can give.
func optionsEnv() *ir.Environment {
	env := pythonEnv()
	env.PipIndex = &ir.PipIndex{URL: "https://mirror.example/simple", ExtraURL: "https://extra.example/simple", Trust: true}
	env.PipOptions = &ir.PipOptions{
		IndexURL:       cpuIndex,
		ExtraIndexURLs: []string{cu118},
		FindLinks:      []string{globLinks},
		TrustedHosts:   []string{"download.pytorch.org"},
		Pre:            true,
		NoDeps:         true,
		Pos:            pos(4),
	}
	return env
}

// words runs line with sh, as a build step would, with the program
// replaced by printf, and returns the words the program would get.
func words(t *testing.T, line, program string) []string {
	t.Helper()
	rest, ok := strings.CutPrefix(line, program+" ")
	if !ok {
		t.Fatalf("%q does not start with %s", line, program)
	}
	out, err := exec.Command("/bin/sh", "-c", `printf '%s\n' `+rest).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
}

// hasPair says flag is followed by value somewhere in argv.
func hasPair(argv []string, flag, value string) bool {
	for i := 0; i+1 < len(argv); i++ {
		if argv[i] == flag && argv[i+1] == value {
			return true
		}
	}
	return false
}

// Each option becomes the installer's flag, its value its own word however
// it reads to a shell; the index proxy fronts config.pip_index's extra URL
// only, since the entries' --index-url replaced its URL.
func TestPipOptionsBecomeInstallerFlags(t *testing.T) {
	c := &compiler{env: optionsEnv()}
	uvResolve := words(t, c.uvCommand(true, "pip", "compile"), uvBinary)
	uvInstall := words(t, c.uvCommand(false, "pip", "install"), uvBinary)
	pipResolve := words(t, shellJoin(c.pipPackageCommand(true)), VenvDir+"/bin/python")
	pipInstall := words(t, shellJoin(c.pipPackageCommand(false)), VenvDir+"/bin/python")
	tools := words(t, shellJoin(c.pipCommand("uv")), VenvDir+"/bin/python")

	where := [][2]string{{"--index-url", cpuIndex}, {"--extra-index-url", "https://extra.example/simple"}, {"--extra-index-url", cu118}, {"--find-links", globLinks}}
	tests := []struct {
		name            string
		argv            []string
		pairs, notPairs [][2]string
		flags, notFlags []string
	}{
		{"uv resolve", uvResolve, slices.Concat(where, [][2]string{{"--allow-insecure-host", "extra.example"}, {"--allow-insecure-host", "download.pytorch.org"}, {"--prerelease", "allow"}}),
			[][2]string{{"--index-url", "https://mirror.example/simple"}}, []string{"--no-deps"}, []string{"--pre", "--trusted-host"}},
		{"uv install", uvInstall, slices.Concat(where, [][2]string{{"--allow-insecure-host", "download.pytorch.org"}}),
			nil, nil, []string{"--prerelease", "--no-deps"}},
		{"pip resolve", pipResolve, slices.Concat(where, [][2]string{{"--trusted-host", "extra.example"}, {"--trusted-host", "download.pytorch.org"}}),
			[][2]string{{"--trusted-host", "mirror.example"}}, []string{"--pre", "--no-deps"}, []string{"--allow-insecure-host", "--prerelease"}},
		{"pip install", pipInstall, slices.Concat(where, [][2]string{{"--trusted-host", "download.pytorch.org"}}), nil, nil, []string{"--pre", "--no-deps"}},
		// uv and pip themselves come from config.pip_index, whatever the entries say.
		{"tools", tools, [][2]string{{"--index-url", "https://mirror.example/simple"}, {"--trusted-host", "mirror.example"}},
			[][2]string{{"--index-url", cpuIndex}, {"--extra-index-url", cu118}, {"--find-links", globLinks}}, nil, []string{"--pre"}},
	}
	for _, tt := range tests {
		for _, p := range tt.pairs {
			if !hasPair(tt.argv, p[0], p[1]) {
				t.Errorf("%s: no %s %s in %q", tt.name, p[0], p[1], tt.argv)
			}
		}
		for _, p := range tt.notPairs {
			if hasPair(tt.argv, p[0], p[1]) {
				t.Errorf("%s: has %s %s: %q", tt.name, p[0], p[1], tt.argv)
			}
		}
		for _, f := range tt.flags {
			if !slices.Contains(tt.argv, f) {
				t.Errorf("%s: no %s in %q", tt.name, f, tt.argv)
			}
		}
		for _, f := range tt.notFlags {
			if slices.Contains(tt.argv, f) {
				t.Errorf("%s: has %s: %q", tt.name, f, tt.argv)
			}
		}
	}
	if line := c.uvCommand(true, "pip", "compile"); strings.Contains(line, indexProxyEnv) || !strings.Contains(line, extraIndexProxyEnv) {
		t.Errorf("the proxy must front config.pip_index's extra URL only, not the entries' index: %s", line)
	}
	if tools := c.uvCommand(true); !strings.Contains(tools, "--cache-dir") {
		t.Errorf("uv without its cache: %s", tools)
	}
}

// Without config.pip_index the options stand alone; without options the
// commands are what they were (the cache of earlier builds stays good).
func TestPipOptionsWithoutConfigIndex(t *testing.T) {
	env := pythonEnv()
	env.PipOptions = &ir.PipOptions{ExtraIndexURLs: []string{cu118}}
	c := &compiler{env: env}
	argv := words(t, c.uvCommand(true, "pip", "compile"), uvBinary)
	if !hasPair(argv, "--extra-index-url", cu118) || slices.Contains(argv, "--index-url") {
		t.Errorf("uv: %q", argv)
	}
	plain := &compiler{env: pythonEnv()}
	if got, want := plain.uvCommand(true, "pip"), shellJoin([]string{uvBinary, "pip", "--cache-dir", uvCacheTarget, "--index-strategy", "unsafe-best-match"}); got != want {
		t.Errorf("without options: %s, want %s", got, want)
	}
	mirror := pythonEnv()
	mirror.PipIndex = &ir.PipIndex{URL: "http://127.0.0.1:8080/simple/", Trust: true}
	if got := strings.Join((&compiler{env: mirror}).pipPackageCommand(true), " "); !strings.HasSuffix(got, "--index-url http://127.0.0.1:8080/simple/ --trusted-host 127.0.0.1") {
		t.Errorf("config.pip_index alone: %s", got)
	}
}

// buildEnv compiles env in two passes, the fake builder answering the
// resolve step with lock; it returns the graph and the resolve step's script.
func buildEnv(t *testing.T, env *ir.Environment, lock []byte) (*graph, string) {
	t.Helper()
	var resolveDef *llb.Definition
	read := func(ctx context.Context, def *llb.Definition, path string) ([]byte, error) {
		resolveDef = def
		return lock, nil
	}
	// uv from the pip step, not the host: a local source is unique per build.
	res, err := Build(context.Background(), env, Options{Platform: LinuxAMD64, Project: "demo"}, Solver{Read: read})
	if err != nil {
		t.Fatal(err)
	}
	script := ""
	for _, op := range parseGraph(t, resolveDef).list {
		if e := op.GetExec(); e != nil && strings.Contains(strings.Join(e.Meta.Args, " "), "pip compile") {
			script = strings.Join(e.Meta.Args, " ")
		}
	}
	return parseGraph(t, res.Def), script
}

// packageInstalls are the install steps of the packages (not uv's fetch).
func packageInstalls(g *graph) map[string]digest.Digest {
	m := installOps(g)
	for args := range m {
		if strings.Contains(args, "uv=="+UVVersion) {
			delete(m, args)
		}
	}
	return m
}

const threeWheels = `lock-version = "1.0"
created-by = "uv"

[[packages]]
name = "numpy"
version = "1.26.4"
wheels = [{ url = "https://download.pytorch.org/whl/numpy-1.26.4-cp311-cp311-linux_x86_64.whl", hashes = { sha256 = "aaa" } }]

[[packages]]
name = "six"
version = "1.16.0"
wheels = [{ url = "https://mirror.example/files/six-1.16.0-py2.py3-none-any.whl", hashes = { sha256 = "bbb" } }]

[[packages]]
name = "torch"
version = "2.1.0+cpu"
wheels = [{ url = "https://download.pytorch.org/whl/cpu/torch-2.1.0%2Bcpu-cp311-cp311-linux_x86_64.whl", hashes = { sha256 = "ccc" } }]
`

// With options, still one layer per distribution, each keyed by what it
// installs and where it is found; the same build again is the same graph
// (all cached), and an option that changes what is resolved changes the
// resolve step's key.
func TestPipOptionsKeepOneLayerPerDistribution(t *testing.T) {
	g, script := buildEnv(t, optionsEnv(), []byte(threeWheels))
	installs := packageInstalls(g)
	if len(installs) != 3 {
		t.Fatalf("install steps = %d, want one per distribution (3)", len(installs))
	}
	for args := range installs {
		if !strings.Contains(args, "--find-links '"+globLinks+"'") || !strings.Contains(args, "--index-url "+cpuIndex) {
			t.Errorf("an install step cannot find its file where the resolve did: %s", args)
		}
	}
	for _, want := range []string{"--prerelease allow --no-deps", "--index-url " + cpuIndex, " --pre --no-deps "} {
		if !strings.Contains(script, want) {
			t.Errorf("the resolve step lacks %q (uv, then pip when the index has no uv): %s", want, script)
		}
	}

	again, _ := buildEnv(t, optionsEnv(), []byte(threeWheels))
	for d := range g.ops {
		if again.ops[d] == nil {
			t.Fatalf("the same build made another graph: op %s is new, so not cached", d)
		}
	}
	noPre := optionsEnv()
	noPre.PipOptions.Pre = false
	_, other := buildEnv(t, noPre, []byte(threeWheels))
	if other == script || strings.Contains(other, "--prerelease") {
		t.Errorf("--pre is not part of the resolve step:\n%s\n%s", script, other)
	}
	// What is chosen does not touch the install steps.
	g3, _ := buildEnv(t, noPre, []byte(threeWheels))
	for args, d := range installs {
		if g3.ops[d] == nil {
			t.Errorf("dropping --pre changed an install step: %s", args)
		}
	}
}

// When the index has no uv, pip resolves and installs, with pip's names.
func TestPipOptionsWithPip(t *testing.T) {
	g, _ := buildEnv(t, optionsEnv(), report(t, "numpy=1.26.4", "torch=2.1.0"))
	installs := packageInstalls(g)
	if len(installs) != 2 {
		t.Fatalf("install steps = %d, want 2", len(installs))
	}
	for args := range installs {
		if !strings.Contains(args, "--trusted-host download.pytorch.org") || strings.Contains(args, "--allow-insecure-host") || strings.Contains(args, "--pre") {
			t.Errorf("pip install step: %s", args)
		}
	}
}

// --dry-run's plan shows the options, as pip's flags, in the step that
// installs the packages.
func TestPlanShowsPipOptions(t *testing.T) {
	plan, err := Plan(context.Background(), optionsEnv(), Options{Platform: LinuxAMD64, Project: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	want := "python packages: pip install numpy>=1.26 six --index-url " + cpuIndex + " --extra-index-url " + cu118 +
		" --find-links " + globLinks + " --trusted-host download.pytorch.org --pre --no-deps [build.envd:4:5]"
	if !strings.Contains(plan, want) {
		t.Errorf("plan lacks %q:\n%s", want, plan)
	}
}

// An entry that would run something is refused before anything is
// compiled; an IR made by other code with such a URL is refused by
// Validate, and even then compile passes it as one word.
func TestPipOptionsCannotInject(t *testing.T) {
	for _, entry := range []string{
		"torch --index-url https://x.example/$(id)",
		"torch; id",
		"--extra-index-url https://x.example/simple && id",
		"-f https://x.example/`id`",
	} {
		src := "def build():\n    install.python_packages(name=[" + strconv.Quote(entry) + "])\n"
		if _, err := lang.LoadSource("build.envd", []byte(src), ""); err == nil || !strings.Contains(err.Error(), "never to a shell") {
			t.Errorf("%q: %v, want it refused", entry, err)
		}
	}
	env := optionsEnv()
	env.PipOptions.FindLinks = []string{"https://x.example/$(touch /tmp/envd-injected)"}
	if err := env.Validate(); err == nil {
		t.Error("Validate accepted a URL with $(...)")
	}
	argv := words(t, (&compiler{env: env}).uvCommand(true, "pip"), uvBinary)
	if !hasPair(argv, "--find-links", env.PipOptions.FindLinks[0]) {
		t.Errorf("the URL was not passed as one word: %q", argv)
	}
}

// Build files in the original envd's style, with pip options in name=:
// each loads and plans, and its plan shows the options.
func TestOriginalPipOptionFiles(t *testing.T) {
	files, _ := filepath.Glob("../lang/testdata/original/*.envd")
	n := 0
	for _, f := range files {
		res, err := lang.Load(f, "")
		if err != nil || res.Env.PipOptions == nil {
			continue // TestOriginalFiles reports it
		}
		n++
		t.Run(filepath.Base(f), func(t *testing.T) {
			plan, err := Plan(context.Background(), res.Env, Options{Platform: LinuxAMD64, Project: "demo"})
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range (&compiler{env: res.Env}).optionWords() {
				if !strings.Contains(plan, w) {
					t.Errorf("plan lacks %q:\n%s", w, plan)
				}
			}
			g, _ := compileGraph(t, res.Env, Options{})
			if n := g.count(func(op *pb.Op) bool {
				e := op.GetExec()
				return e != nil && strings.Contains(strings.Join(e.Meta.Args, " "), "-m pip install --disable-pip-version-check")
			}); n == 0 {
				t.Error("no pip step")
			}
		})
	}
	if n < 10 {
		t.Fatalf("the corpus has %d files with pip options: %v", n, files)
	}
}
