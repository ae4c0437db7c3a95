package compile

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"envd.dev/envd/internal/ir"
)

// graph is a marshalled definition, indexed by op digest, for assertions.
type graph struct {
	ops  map[digest.Digest]*pb.Op
	list []*pb.Op
}

func compileGraph(t *testing.T, env *ir.Environment, o Options) (*graph, *Result) {
	t.Helper()
	if o.Project == "" {
		o.Project = "demo"
	}
	if o.Platform == (Platform{}) {
		o.Platform = LinuxAMD64 // platform_test.go covers the others
	}
	res, err := Compile(context.Background(), env, o)
	if err != nil {
		t.Fatal(err)
	}
	return parseGraph(t, res.Def), res
}

// parseGraph indexes a marshalled definition's ops by digest.
func parseGraph(t *testing.T, def *llb.Definition) *graph {
	t.Helper()
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

// exec returns the one exec op whose joined args contain s.
func (g *graph) exec(t *testing.T, s string) *pb.ExecOp {
	t.Helper()
	var found []*pb.ExecOp
	for _, op := range g.list {
		if e := op.GetExec(); e != nil && strings.Contains(strings.Join(e.Meta.Args, " "), s) {
			found = append(found, e)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one exec op containing %q, found %d", s, len(found))
	}
	return found[0]
}

func (g *graph) count(kind func(*pb.Op) bool) int {
	n := 0
	for _, op := range g.list {
		if kind(op) {
			n++
		}
	}
	return n
}

func cacheMounts(e *pb.ExecOp) map[string]*pb.CacheOpt {
	m := map[string]*pb.CacheOpt{}
	for _, mnt := range e.Mounts {
		if mnt.MountType == pb.MountType_CACHE {
			m[mnt.Dest] = mnt.CacheOpt
		}
	}
	return m
}

func pos(line int) ir.Pos { return ir.Pos{File: "build.envd", Line: line, Col: 5} }

func pythonEnv() *ir.Environment {
	return &ir.Environment{
		Base:           ir.Base{Image: "docker.io/library/debian:bookworm"},
		Python:         &ir.Python{Pos: pos(2)},
		AptPackages:    []ir.Package{{Name: "curl", Pos: pos(3)}, {Name: "git", Pos: pos(3)}},
		PythonPackages: []ir.Package{{Name: "six", Pos: pos(4)}, {Name: "numpy>=1.26", Pos: pos(4)}},
	}
}

func TestAptUsesLockedCacheMounts(t *testing.T) {
	g, _ := compileGraph(t, pythonEnv(), Options{})
	e := g.exec(t, "apt-get install -y -q --no-install-recommends curl git")
	mounts := cacheMounts(e)
	if m := mounts["/var/cache/apt"]; m == nil || m.ID != AptArchivesID || m.Sharing != pb.CacheSharingOpt_LOCKED {
		t.Errorf("/var/cache/apt mount = %+v, want id %s locked", m, AptArchivesID)
	}
	if m := mounts["/var/lib/apt"]; m == nil || !strings.HasPrefix(m.ID, aptListsPrefix) || m.Sharing != pb.CacheSharingOpt_LOCKED {
		t.Errorf("/var/lib/apt mount = %+v, want id %s* locked", m, aptListsPrefix)
	}
	// docker-clean would delete the archives the cache mount keeps.
	var removed bool
	for _, op := range g.list {
		if f := op.GetFile(); f != nil {
			for _, a := range f.Actions {
				if rm := a.GetRm(); rm != nil && rm.Path == "/etc/apt/apt.conf.d/docker-clean" {
					removed = true
				}
			}
		}
	}
	if !removed {
		t.Error("docker-clean is not removed")
	}
}

func TestPipUsesSharedCacheAndVenv(t *testing.T) {
	g, res := compileGraph(t, pythonEnv(), Options{})
	e := g.exec(t, "pip install")
	if m := cacheMounts(e)[pipCacheTarget]; m == nil || m.ID != PipCacheID {
		t.Errorf("pip cache mount = %+v, want id %s", m, PipCacheID)
	}
	args := strings.Join(e.Meta.Args, " ")
	if !strings.HasPrefix(args, "/bin/sh -c "+VenvDir+"/bin/python -m pip install") || !strings.HasSuffix(args, "'numpy>=1.26' six") {
		t.Errorf("pip args = %q", args)
	}
	g.exec(t, "python3 -m venv "+VenvDir)
	if p := envOf(res.Config.Config.Env, "PATH"); !strings.HasPrefix(p, VenvDir+"/bin:") {
		t.Errorf("image PATH = %q, want the venv first", p)
	}
}

func TestIndependentStagesAreMerged(t *testing.T) {
	g, _ := compileGraph(t, pythonEnv(), Options{})
	var merge *pb.MergeOp
	for _, op := range g.list {
		if m := op.GetMerge(); m != nil {
			merge = m
		}
	}
	if merge == nil || len(merge.Inputs) != 3 {
		t.Fatalf("want a merge of runtime + 2 diffs, got %+v", merge)
	}
	if n := g.count(func(op *pb.Op) bool { return op.GetDiff() != nil }); n != 2 {
		t.Errorf("diff ops = %d, want 2", n)
	}
	// The apt step must not depend on the pip step or the other way round.
	apt := g.exec(t, "install -y -q --no-install-recommends curl git")
	pip := g.exec(t, "pip install")
	if dependsOn(g, pip, apt) || dependsOn(g, apt, pip) {
		t.Error("system and python packages are chained, want independent branches")
	}
}

// dependsOn reports whether op a has b among its transitive inputs.
func dependsOn(g *graph, a, b *pb.ExecOp) bool {
	var opOf = func(e *pb.ExecOp) *pb.Op {
		for _, op := range g.list {
			if op.GetExec() == e {
				return op
			}
		}
		return nil
	}
	target := opOf(b)
	seen := map[*pb.Op]bool{}
	var walk func(op *pb.Op) bool
	walk = func(op *pb.Op) bool {
		for _, in := range op.Inputs {
			child := g.ops[digest.Digest(in.Digest)]
			if child == target {
				return true
			}
			if child != nil && !seen[child] {
				seen[child] = true
				if walk(child) {
					return true
				}
			}
		}
		return false
	}
	return walk(opOf(a))
}

func TestRequirementsFileIsAnInput(t *testing.T) {
	env := pythonEnv()
	env.Requirements = []ir.File{{Path: "requirements.txt", Pos: pos(5)}}
	g, _ := compileGraph(t, env, Options{})
	e := g.exec(t, "pip install")
	if !strings.Contains(strings.Join(e.Meta.Args, " "), "-r "+mountDir+"/requirements0/requirements.txt") {
		t.Errorf("pip args %q do not read the requirements file", e.Meta.Args)
	}
	var local *pb.SourceOp
	for _, op := range g.list {
		if s := op.GetSource(); s != nil && s.Identifier == "local://"+LocalContext && strings.Contains(s.Attrs[pb.AttrFollowPaths], "requirements.txt") {
			local = s
		}
	}
	if local == nil {
		t.Fatal("no local source following requirements.txt")
	}
	var mounted bool
	for _, m := range e.Mounts {
		if m.Dest == mountDir+"/requirements0" && m.Readonly {
			mounted = true
		}
	}
	if !mounted {
		t.Error("requirements file is not mounted read-only into the pip step")
	}
}

func TestNoPythonMeansNoVenv(t *testing.T) {
	env := &ir.Environment{
		Base:        ir.Base{Image: "docker.io/library/debian:bookworm"},
		AptPackages: []ir.Package{{Name: "curl"}},
	}
	g, res := compileGraph(t, env, Options{})
	if n := g.count(func(op *pb.Op) bool { return op.GetMerge() != nil }); n != 0 {
		t.Errorf("merge ops = %d, want 0", n)
	}
	for _, op := range g.list {
		if e := op.GetExec(); e != nil && strings.Contains(strings.Join(e.Meta.Args, " "), "venv") {
			t.Errorf("unexpected venv step %q", e.Meta.Args)
		}
	}
	if p := envOf(res.Config.Config.Env, "PATH"); strings.Contains(p, VenvDir) {
		t.Errorf("PATH %q names the venv", p)
	}
}

func TestStepsKeepOrderAndEnv(t *testing.T) {
	env := pythonEnv()
	env.Environ = map[string]string{"B": "2", "A": "1"}
	env.ExtraPath = []string{"/opt/tools/bin"}
	env.Steps = []ir.Step{
		{Run: &ir.RunStep{Commands: []string{"echo one", "echo two"}}, Pos: pos(7)},
		{Copy: &ir.CopyStep{Source: "data", Target: "/data"}, Pos: pos(8)},
		{Run: &ir.RunStep{Commands: []string{"echo three"}}, Pos: pos(9)},
	}
	g, res := compileGraph(t, env, Options{})
	first := g.exec(t, "echo one")
	last := g.exec(t, "echo three")
	if !dependsOn(g, last, first) {
		t.Error("steps are not chained in declaration order")
	}
	if got := strings.Join(first.Meta.Args, " "); got != "/bin/sh -c set -e\necho one\necho two" {
		t.Errorf("run args = %q", got)
	}
	if v := envOf(first.Meta.Env, "A"); v != "1" {
		t.Errorf("run step sees A=%q, want 1", v)
	}
	if p := envOf(res.Config.Config.Env, "PATH"); !strings.HasPrefix(p, VenvDir+"/bin:/opt/tools/bin:") {
		t.Errorf("PATH = %q", p)
	}
	if envOf(res.Config.Config.Env, "B") != "2" {
		t.Errorf("image env %v lacks B=2", res.Config.Config.Env)
	}
}

func TestBaseConfigIsKept(t *testing.T) {
	base := &ocispecs.Image{}
	base.Config.Env = []string{"PATH=/usr/local/cuda/bin:/usr/bin:/bin", "NVIDIA_VISIBLE_DEVICES=all"}
	base.Config.Cmd = []string{"/bin/sh"}
	g, res := compileGraph(t, pythonEnv(), Options{Base: base, BaseDigest: "sha256:" + strings.Repeat("a", 64)})
	env := res.Config.Config.Env
	if p := envOf(env, "PATH"); p != VenvDir+"/bin:/usr/local/cuda/bin:/usr/bin:/bin" {
		t.Errorf("PATH = %q", p)
	}
	if envOf(env, "NVIDIA_VISIBLE_DEVICES") != "all" {
		t.Errorf("base env lost: %v", env)
	}
	if strings.Join(res.Config.Config.Cmd, " ") != "/bin/sh" {
		t.Errorf("cmd = %v", res.Config.Config.Cmd)
	}
	var pinned bool
	for _, op := range g.list {
		if s := op.GetSource(); s != nil && strings.HasSuffix(s.Identifier, "@sha256:"+strings.Repeat("a", 64)) {
			pinned = true
		}
	}
	if !pinned {
		t.Error("base image is not pinned by digest")
	}
}

func TestLabelsDescribeTheEnvironment(t *testing.T) {
	_, res := compileGraph(t, pythonEnv(), Options{EnvdVersion: "v0.1.0", BuildKey: "k1"})
	l := res.Config.Config.Labels
	want := map[string]string{
		LabelVersion:        "v0.1.0",
		LabelBuildKey:       "k1",
		LabelBase:           "docker.io/library/debian:bookworm",
		LabelPython:         "3.11",
		LabelAptPackages:    "curl,git",
		LabelPythonPackages: "numpy>=1.26,six",
		LabelDigest:         pythonEnv().Digest(),
	}
	for k, v := range want {
		if l[k] != v {
			t.Errorf("label %s = %q, want %q", k, l[k], v)
		}
	}
	if !strings.Contains(l[LabelEnvironment], `"python_packages"`) {
		t.Errorf("environment label lacks the IR: %s", l[LabelEnvironment])
	}
}

func TestPipIndexAndOtherPython(t *testing.T) {
	env := pythonEnv()
	env.PipIndex = &ir.PipIndex{URL: "http://127.0.0.1:8080/simple/", ExtraURL: "https://mirror.example/simple", Trust: true}
	env.Python.Version = "3.12"
	g, _ := compileGraph(t, env, Options{})
	args := strings.Join(g.exec(t, "pip install --disable").Meta.Args, " ")
	for _, want := range []string{"--index-url http://127.0.0.1:8080/simple/", "--extra-index-url https://mirror.example/simple", "--trusted-host 127.0.0.1", "--trusted-host mirror.example"} {
		if !strings.Contains(args, want) {
			t.Errorf("pip args %q lack %q", args, want)
		}
	}
	uv := g.exec(t, "uv python install 3.12")
	if m := cacheMounts(uv)["/root/.cache/uv"]; m == nil || m.ID != uvCacheID {
		t.Errorf("uv step lacks its cache mount: %+v", uv.Mounts)
	}
}

func TestNamesAreQuotedForTheShell(t *testing.T) {
	env := pythonEnv()
	env.AptPackages = []ir.Package{{Name: "evil'; rm -rf / #"}}
	g, _ := compileGraph(t, env, Options{})
	g.exec(t, `'evil'\''; rm -rf / #'`)
}

func TestMarshalIsDeterministic(t *testing.T) {
	env := pythonEnv()
	env.Environ = map[string]string{"A": "1", "B": "2", "C": "3"}
	first, _ := compileGraph(t, env, Options{})
	for i := 0; i < 20; i++ {
		again, _ := compileGraph(t, env, Options{})
		if len(again.ops) != len(first.ops) {
			t.Fatal("op count differs between runs")
		}
		for d := range first.ops {
			if again.ops[d] == nil {
				t.Fatalf("run %d: op %s missing: marshalling is not deterministic", i, d)
			}
		}
	}
}

func envOf(env []string, key string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}

func TestCABundleIsMountedNotBaked(t *testing.T) {
	env := pythonEnv()
	env.Steps = []ir.Step{{Run: &ir.RunStep{Commands: []string{"curl https://example.com"}}}}
	g, res := compileGraph(t, env, Options{CABundle: true})
	for _, s := range []string{"pip install", "curl https"} {
		e := g.exec(t, s)
		var secret bool
		for _, m := range e.Mounts {
			if m.MountType == pb.MountType_SECRET && m.Dest == caBundlePath && m.SecretOpt.ID == CABundleSecret {
				secret = true
			}
		}
		if !secret || envOf(e.Meta.Env, "PIP_CERT") != caBundlePath {
			t.Errorf("%s step: CA bundle not mounted (mounts %+v)", s, e.Mounts)
		}
	}
	if envOf(res.Config.Config.Env, "PIP_CERT") != "" {
		t.Error("the CA bundle leaked into the image config")
	}
	// Without the option nothing refers to it.
	g, _ = compileGraph(t, env, Options{})
	if envOf(g.exec(t, "pip install").Meta.Env, "PIP_CERT") != "" {
		t.Error("PIP_CERT set without a CA bundle")
	}
}

func TestAptUpdatesOnlyStaleLists(t *testing.T) {
	g, _ := compileGraph(t, pythonEnv(), Options{})
	script := strings.Join(g.exec(t, "install -y -q --no-install-recommends curl git").Meta.Args, " ")
	// install from lists updated minutes ago, else (or when that fails) update first and mark the lists
	for _, want := range []string{
		"find " + aptUpdatedMarker + " -mmin -10",
		"&& DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends curl git; then :; else apt-get update -q && touch " + aptUpdatedMarker + " && DEBIAN",
	} {
		if !strings.Contains(script, want) {
			t.Errorf("apt step lacks %q:\n%s", want, script)
		}
	}
}

// orEnv's word is $ENV when set, else the value exactly, whatever it holds.
func TestOrEnvInTheShell(t *testing.T) {
	for _, tc := range []struct{ value, env string }{
		{"https://pypi.corp.example/simple/", ""},
		{"https://u:p%40ss@pypi.corp.example/simple/", ""},
		{`http://h/we"ird/$HOME/` + "`x`" + `/\/}{`, ""},
		{"https://pypi.corp.example/simple/", "http://127.0.0.1:20001/i/0/"},
	} {
		cmd := exec.Command("/bin/sh", "-c", "printf %s "+orEnv("ENVD_T", tc.value))
		cmd.Env = []string{"ENVD_T=" + tc.env}
		out, err := cmd.Output()
		want := tc.value
		if tc.env != "" {
			want = tc.env
		}
		if err != nil || string(out) != want {
			t.Errorf("orEnv(%q) with ENVD_T=%q: sh printed %q (%v), want %q", tc.value, tc.env, out, err, want)
		}
	}
}

// copyTo returns the one copy action whose dest is dest, and the op it
// copies from (its secondary input).
func (g *graph) copyTo(t *testing.T, dest string) (*pb.FileActionCopy, *pb.Op) {
	t.Helper()
	for _, op := range g.list {
		f := op.GetFile()
		if f == nil {
			continue
		}
		for _, a := range f.Actions {
			if cp := a.GetCopy(); cp != nil && cp.Dest == dest {
				if int(a.SecondaryInput) >= len(op.Inputs) {
					t.Fatalf("copy to %s reads no input of its op", dest)
				}
				return cp, g.ops[digest.Digest(op.Inputs[a.SecondaryInput].Digest)]
			}
		}
	}
	t.Fatalf("no copy to %s", dest)
	return nil, nil
}

// io.copy(image=...) copies from the image BuildKit pulls, like COPY
// --from, in the order of the steps; the build directory is not read.
func TestCopyFromImage(t *testing.T) {
	env := pythonEnv()
	env.Steps = []ir.Step{
		{Copy: &ir.CopyStep{Source: "/bin/micromamba", Target: "/usr/local/bin/micromamba", Image: "docker.io/mambaorg/micromamba:1.0.0"}, Pos: pos(7)},
		{Run: &ir.RunStep{Commands: []string{"micromamba --version"}}, Pos: pos(8)},
		{Copy: &ir.CopyStep{Source: "data", Target: "/data"}, Pos: pos(9)},
	}
	g, _ := compileGraph(t, env, Options{})

	cp, from := g.copyTo(t, "/usr/local/bin/micromamba")
	src := from.GetSource()
	if src == nil || src.Identifier != "docker-image://docker.io/mambaorg/micromamba:1.0.0" {
		t.Fatalf("copy reads %+v, want the image", from)
	}
	if p := from.Platform; p == nil || p.OS != "linux" || p.Architecture != "amd64" {
		t.Errorf("image platform %+v, want linux/amd64 like the base", p)
	}
	if cp.Src != "/bin/micromamba" || !cp.CreateDestPath || !cp.FollowSymlink || !cp.DirCopyContents {
		t.Errorf("copy %+v", cp)
	}
	// The build directory is read for the other copy only.
	if _, ctx := g.copyTo(t, "/data"); ctx.GetSource() == nil || ctx.GetSource().Attrs[pb.AttrFollowPaths] != `["data"]` {
		t.Errorf("copy from the build directory reads %+v", ctx)
	}
	for _, op := range g.list {
		if s := op.GetSource(); s != nil && strings.Contains(s.Attrs[pb.AttrFollowPaths], "micromamba") {
			t.Errorf("the build directory is read for the image's file: %+v", s)
		}
	}
	if run := g.exec(t, "micromamba --version"); g.opOf(run) == nil {
		t.Fatal("no run step")
	}

	plan, err := Plan(context.Background(), env, Options{Platform: LinuxAMD64, Project: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	rest := plan
	for _, w := range []string{"image docker.io/mambaorg/micromamba:1.0.0",
		"copy /bin/micromamba from docker.io/mambaorg/micromamba:1.0.0 to /usr/local/bin/micromamba [build.envd:7:5]",
		"run: micromamba --version [build.envd:8:5]", "copy data to /data [build.envd:9:5]"} {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Fatalf("plan lacks %q (in order):\n%s", w, plan)
		}
		rest = rest[i+len(w):]
	}

	// Another reference is another graph.
	before, _ := Compile(context.Background(), env, Options{Platform: LinuxAMD64, Project: "demo"})
	env.Steps[0].Copy.Image = "docker.io/mambaorg/micromamba:1.5.0"
	after, _ := Compile(context.Background(), env, Options{Platform: LinuxAMD64, Project: "demo"})
	if string(before.Def.Def[len(before.Def.Def)-1]) == string(after.Def.Def[len(after.Def.Def)-1]) {
		t.Error("changing the image did not change the graph")
	}
}
