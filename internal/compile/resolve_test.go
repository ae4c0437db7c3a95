package compile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	digest "github.com/opencontainers/go-digest"

	"envd.dev/envd/internal/ir"
)

// report writes a pip installation report for the given name=version pairs,
// served from a test index.
func report(t *testing.T, pkgs ...string) []byte {
	t.Helper()
	type item struct {
		DownloadInfo map[string]any    `json:"download_info"`
		Metadata     map[string]string `json:"metadata"`
	}
	var items []item
	for _, p := range pkgs {
		name, version, _ := strings.Cut(p, "=")
		items = append(items, item{
			DownloadInfo: map[string]any{
				"url":          fmt.Sprintf("http://127.0.0.1:9/files/%s-%s-py3-none-any.whl", name, version),
				"archive_info": map[string]any{"hash": "sha256=" + strings.Repeat("a", 64), "hashes": map[string]string{"sha256": strings.Repeat("a", 64)}},
			},
			Metadata: map[string]string{"name": name, "version": version},
		})
	}
	data, err := json.Marshal(map[string]any{"version": "1", "install": items})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseReport(t *testing.T) {
	data := []byte(`{"version":"1","install":[
	 {"download_info":{"url":"https://files.example/six-1.16.0-py2.py3-none-any.whl","archive_info":{"hashes":{"sha256":"abc"}}},"metadata":{"name":"six","version":"1.16.0"}},
	 {"download_info":{"url":"file:///tmp/envd/wheels/dist/mine-0.1-py3-none-any.whl","archive_info":{"hash":"sha256=def"}},"metadata":{"name":"Mine","version":"0.1"}},
	 {"download_info":{"url":"https://git.example/lib.git","vcs_info":{"vcs":"git","commit_id":"0123abc"}},"metadata":{"name":"lib","version":"2.0"}}]}`)
	dists, err := ParseReport(data)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"lib git+https://git.example/lib.git@0123abc",
		"Mine file:///tmp/envd/wheels/dist/mine-0.1-py3-none-any.whl#sha256=def",
		"six https://files.example/six-1.16.0-py2.py3-none-any.whl#sha256=abc",
	}
	for i, d := range dists {
		if got := d.Name + " " + d.installArg(); got != want[i] {
			t.Errorf("dist %d = %q, want %q", i, got, want[i])
		}
	}
	if _, err := ParseReport([]byte(`{"install":[{"metadata":{"name":"x"}}]}`)); err == nil {
		t.Error("a distribution without URL was accepted")
	}
	if _, err := ParseReport([]byte(`not json`)); err == nil {
		t.Error("garbage was accepted")
	}
}

func TestParsePylock(t *testing.T) {
	data := []byte(`lock-version = "1.0"
created-by = "uv"

[[packages]]
name = "six"
version = "1.16.0"
sdist = { url = "https://files.example/six-1.16.0.tar.gz", hashes = { sha256 = "sdist" } }
wheels = [{ url = "https://files.example/six-1.16.0-py2.py3-none-any.whl", size = 11053, hashes = { sha256 = "abc" } }]

[[packages]]
name = "Mine"
version = "0.1"
archive = { path = "/tmp/envd/wheels/dist/mine-0.1-py3-none-any.whl", hashes = { sha256 = "def" } }

[[packages]]
name = "lib"
version = "2.0"
vcs = { type = "git", url = "https://git.example/lib.git", commit-id = "0123abc" }

[[packages]]
name = "onlysdist"
version = "1"
sdist = { url = "https://files.example/onlysdist-1.tar.gz", hashes = { sha256 = "fed" } }
`)
	dists, installer, err := ParseLock(data)
	if err != nil {
		t.Fatal(err)
	}
	if installer != InstallerUV {
		t.Errorf("installer = %q, want uv", installer)
	}
	want := []string{
		"lib git+https://git.example/lib.git@0123abc",
		"Mine file:///tmp/envd/wheels/dist/mine-0.1-py3-none-any.whl#sha256=def",
		"onlysdist https://files.example/onlysdist-1.tar.gz#sha256=fed",
		"six https://files.example/six-1.16.0-py2.py3-none-any.whl#sha256=abc",
	}
	if len(dists) != len(want) {
		t.Fatalf("got %d distributions, want %d: %+v", len(dists), len(want), dists)
	}
	for i, d := range dists {
		if got := d.Name + " " + d.installArg(); got != want[i] {
			t.Errorf("dist %d = %q, want %q", i, got, want[i])
		}
	}
	for _, bad := range []string{"[[packages]]\nversion = \"1\"\n", "[[packages]]\nname = \"x\"\n", "not = toml = at all"} {
		if _, _, err := ParseLock([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	if six := dists[3]; six.Size != 11053 {
		t.Errorf("six's size = %d, want the lock's 11053", six.Size)
	}
	if _, installer, err := ParseLock(report(t, "six=1")); err != nil || installer != InstallerPip {
		t.Errorf("pip's report: installer %q, err %v", installer, err)
	}
}

func TestRequirementLines(t *testing.T) {
	tests := []struct {
		d    Distribution
		want string
	}{
		{Distribution{Name: "six", Version: "1.16.0", URL: "https://files.example/six.whl", SHA256: "abc"}, "six==1.16.0 --hash=sha256:abc"},
		{Distribution{Name: "mine", Version: "0.1", URL: "file:///tmp/envd/wheels/mine-0.1-py3-none-any.whl", SHA256: "def"},
			"mine @ file:///tmp/envd/wheels/mine-0.1-py3-none-any.whl --hash=sha256:def"},
		{Distribution{Name: "lib", Version: "2.0", URL: "https://git.example/lib.git", VCS: "git", Commit: "0123abc"}, "lib @ git+https://git.example/lib.git@0123abc"},
		{Distribution{Name: "nohash", Version: "1", URL: "https://files.example/nohash.tar.gz"}, "https://files.example/nohash.tar.gz"},
	}
	for _, tt := range tests {
		if got := tt.d.requirementLine(); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.d.Name, got, tt.want)
		}
	}
}

// TestUVInstallsWhatUVResolved: with a uv lock, each install step runs uv
// (mounted, not in the image) on its exact file, pinned by version and
// hash, and compiles bytecode.
func TestUVInstallsWhatUVResolved(t *testing.T) {
	lock := []Distribution{{Name: "six", Version: "1", URL: "http://127.0.0.1:9/files/six-1-py3-none-any.whl", SHA256: "abc"}}
	res, err := Compile(context.Background(), pythonEnv(), Options{Platform: LinuxAMD64, Project: "demo", Lock: lock, Installer: InstallerUV})
	if err != nil {
		t.Fatal(err)
	}
	e := parseGraph(t, res.Def).exec(t, "pip install --python")
	args := strings.Join(e.Meta.Args, " ")
	for _, want := range []string{uvBinary + " pip install", "--no-deps", "--compile-bytecode", "--link-mode copy", "'six==1 --hash=sha256:abc' | "} {
		if !strings.Contains(args, want) {
			t.Errorf("install step lacks %q: %s", want, args)
		}
	}
	var tool *pb.Mount
	for _, m := range e.Mounts {
		if m.Dest == uvToolMount {
			tool = m
		}
	}
	if tool == nil || !tool.Readonly {
		t.Errorf("uv is not mounted read-only at %s: %+v", uvToolMount, e.Mounts)
	}
	if m := cacheMounts(e)[uvCacheTarget]; m == nil || m.ID != uvCacheID {
		t.Error("the install step does not use the uv cache")
	}
}

func TestGroupDistributions(t *testing.T) {
	var dists []Distribution
	for i := 0; i < 10; i++ {
		dists = append(dists, Distribution{Name: fmt.Sprintf("pkg%d", i)})
	}
	if g := groupDistributions(dists, 48); len(g) != 10 {
		t.Errorf("10 dists under the cap: %d groups, want 10", len(g))
	}
	before := groupDistributions(dists, 4)
	after := groupDistributions(append(dists, Distribution{Name: "newcomer"}), 4)
	changed := 0
	key := func(g []Distribution) string {
		var n []string
		for _, d := range g {
			n = append(n, d.Name)
		}
		return strings.Join(n, ",")
	}
	seen := map[string]bool{}
	for _, g := range before {
		seen[key(g)] = true
	}
	for _, g := range after {
		if !seen[key(g)] {
			changed++
		}
	}
	if len(after) > 4 || changed != 1 {
		t.Errorf("over the cap: %d groups, %d changed by adding one; want ≤4 and 1", len(after), changed)
	}
}

// build compiles env in two passes with a fake builder that answers the
// resolve step with the given report.
func buildWithReport(t *testing.T, rep []byte) (*graph, *llb.Definition) {
	t.Helper()
	var resolveDef *llb.Definition
	read := func(ctx context.Context, def *llb.Definition, path string) ([]byte, error) {
		if path != ResolveFile {
			t.Fatalf("read %q", path)
		}
		resolveDef = def
		return rep, nil
	}
	env := pythonEnv()
	res, err := Build(context.Background(), env, Options{Platform: LinuxAMD64, Project: "demo"}, Solver{Read: read})
	if err != nil {
		t.Fatal(err)
	}
	return parseGraph(t, res.Def), resolveDef
}

func installOps(g *graph) map[string]digest.Digest {
	m := map[string]digest.Digest{}
	for d, op := range g.ops {
		e := op.GetExec()
		if e == nil {
			continue
		}
		// Not the resolve step, which the image's graph holds for its lock,
		// nor the step that fetches uv for it.
		if args := strings.Join(e.Meta.Args, " "); strings.Contains(args, "--no-deps") && !strings.Contains(args, reportDir) && !strings.Contains(args, "uv=="+UVVersion) {
			m[args] = d
		}
	}
	return m
}

// TestOneLayerPerDistribution: after resolving, each distribution installs
// in its own step from its exact file; adding one adds one step and leaves
// every other step (and so its cache) as it was.
func TestOneLayerPerDistribution(t *testing.T) {
	g, resolveDef := buildWithReport(t, report(t, "numpy=1.26.4", "six=1.16.0", "gamma=3"))
	first := installOps(g)
	if len(first) != 3 {
		t.Fatalf("install steps = %d, want one per distribution (3)", len(first))
	}
	for args := range first {
		if !strings.Contains(args, "--no-deps 'http://127.0.0.1:9/files/") || !strings.Contains(args, "#sha256=") {
			t.Errorf("install step does not name its exact file: %s", args)
		}
	}
	var merge *pb.MergeOp
	for _, op := range g.list {
		if m := op.GetMerge(); m != nil {
			merge = m
		}
	}
	if merge == nil || len(merge.Inputs) != 1+1+3+1 {
		t.Errorf("merge = %+v, want runtime + system + 3 package layers + the lock", merge)
	}
	// The lock's layer, on top, copies the resolve step's output: the very
	// step that ran (its digest), so a team cache carries its result.
	var lockCopy *pb.Op
	for _, op := range g.list {
		if f := op.GetFile(); f != nil && len(f.Actions) == 1 && f.Actions[0].GetCopy() != nil && f.Actions[0].GetCopy().Dest == PipReportPath {
			lockCopy = op
		}
	}
	if lockCopy == nil {
		t.Fatalf("no step copies the lock to %s", PipReportPath)
	}
	ran := parseGraph(t, resolveDef)
	var resolveStep digest.Digest
	for d, op := range ran.ops {
		if e := op.GetExec(); e != nil && strings.Contains(strings.Join(e.Meta.Args, " "), "--dry-run") {
			resolveStep = d
		}
	}
	if len(lockCopy.Inputs) != 1 || lockCopy.Inputs[0].Digest != string(resolveStep) || lockCopy.Inputs[0].Index != 1 {
		t.Errorf("the lock's copy reads %+v, want the resolve step %s", lockCopy.Inputs, resolveStep)
	}

	// The resolve step: a dry run whose report lands in its own mount.
	var resolve *pb.ExecOp
	for _, dt := range resolveDef.Def {
		var op pb.Op
		op.UnmarshalVT(dt)
		if e := op.GetExec(); e != nil && strings.Contains(strings.Join(e.Meta.Args, " "), "--dry-run") {
			resolve = e
		}
	}
	script := strings.Join(resolve.Meta.Args, " ")
	if resolve == nil || !strings.Contains(script, "--report "+reportDir+"/"+ResolveFile) {
		t.Fatalf("no pip resolve writing the report: %+v", resolve)
	}
	if !strings.Contains(script, uvBinary+" pip compile") || !strings.Contains(script, "mv "+reportDir+"/pylock.toml "+reportDir+"/"+ResolveFile) {
		t.Errorf("the resolve step does not try uv first: %s", script)
	}
	if m := cacheMounts(resolve)[pipCacheTarget]; m == nil || m.ID != PipCacheID {
		t.Error("the resolve step does not share the pip cache")
	}
	if m := cacheMounts(resolve)[uvCacheTarget]; m == nil || m.ID != uvCacheID {
		t.Error("the resolve step does not share the uv cache")
	}

	g2, _ := buildWithReport(t, report(t, "numpy=1.26.4", "six=1.16.0", "gamma=3", "delta=4"))
	second := installOps(g2)
	added := 0
	for args, d := range second {
		if first[args] != d {
			added++
		}
	}
	if len(second) != 4 || added != 1 {
		t.Errorf("adding a package: %d steps, %d new; want 4 and 1", len(second), added)
	}
}

// TestLargestLayersGoFirst: with nothing to keep, bigger distributions go
// lower, so a small one that changes later has only small ones above it.
func TestLargestLayersGoFirst(t *testing.T) {
	lock := []Distribution{
		{Name: "aaa-small", Version: "1", URL: "http://127.0.0.1:9/files/aaa.whl", Size: 10},
		{Name: "big", Version: "1", URL: "http://127.0.0.1:9/files/big.whl", Size: 1000},
		{Name: "mid", Version: "1", URL: "http://127.0.0.1:9/files/mid.whl", Size: 100},
	}
	res, err := Compile(context.Background(), pythonEnv(), Options{Platform: LinuxAMD64, Project: "demo", Lock: lock, Installer: InstallerUV, HostUV: "uv"})
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, k := range res.LayerOrder {
		if name, ok := strings.CutPrefix(k, "python:http://127.0.0.1:9/files/"); ok {
			order = append(order, name)
		}
	}
	if want := "big.whl mid.whl aaa.whl"; strings.Join(order, " ") != want {
		t.Errorf("package layers bottom to top: %q, want %q", order, want)
	}
	// pip's layer changes only with the runtime: lowest of all
	if res.LayerOrder[0] != "python:pip (ensurepip)" {
		t.Errorf("bottom layer is %q, want pip's", res.LayerOrder[0])
	}
}

// TestNewLayersGoOnTop: given the previous build's layer order, a new
// package's layer lands on top and every other layer keeps its place, even
// when the new name sorts first.
func TestNewLayersGoOnTop(t *testing.T) {
	dists := func(names ...string) []Distribution {
		var out []Distribution
		for _, n := range names {
			out = append(out, Distribution{Name: n, Version: "1", URL: "http://127.0.0.1:9/files/" + n + ".whl"})
		}
		return out
	}
	first, err := Compile(context.Background(), pythonEnv(), Options{Platform: LinuxAMD64, Project: "demo", Lock: dists("numpy", "six")})
	if err != nil {
		t.Fatal(err)
	}
	second, err := Compile(context.Background(), pythonEnv(), Options{Platform: LinuxAMD64, Project: "demo", Lock: dists("aaa", "numpy", "six"), LayerOrder: first.LayerOrder})
	if err != nil {
		t.Fatal(err)
	}
	want := append(append([]string{}, first.LayerOrder...), "python:http://127.0.0.1:9/files/aaa.whl")
	if strings.Join(second.LayerOrder, "|") != strings.Join(want, "|") {
		t.Errorf("layer order after adding aaa:\n got %q\nwant %q", second.LayerOrder, want)
	}
}

func TestUVFromTheHost(t *testing.T) {
	lock := []Distribution{{Name: "six", Version: "1", URL: "http://127.0.0.1:9/files/six-1-py3-none-any.whl", SHA256: "abc"}}
	for _, hostUV := range []string{"", "0.13.9-linux-amd64"} {
		g, _ := compileGraph(t, pythonEnv(), Options{Lock: lock, Installer: InstallerUV, HostUV: hostUV})
		var venv, ensurepip, fetch int
		for _, op := range g.list {
			e := op.GetExec()
			if e == nil {
				continue
			}
			args := strings.Join(e.Meta.Args, " ")
			if strings.Contains(args, "python3 -m venv "+VenvDir+" --without-pip") {
				venv++
			}
			if strings.Contains(args, "-m ensurepip --default-pip") {
				ensurepip++
			}
			if strings.Contains(args, "uv=="+UVVersion) {
				fetch++
			}
			if !strings.Contains(args, "pip install --python") {
				continue
			}
			for _, m := range e.Mounts {
				if m.Dest != uvToolMount {
					continue
				}
				src := g.ops[digest.Digest(op.Inputs[m.Input].Digest)].GetSource()
				fromHost := src != nil && src.Identifier == "local://"+LocalUV
				if fromHost != (hostUV != "") || (hostUV != "" && m.Selector != hostUV) || !m.Readonly {
					t.Errorf("HostUV %q: uv mounted from %v (selector %q, read-only %v)", hostUV, src, m.Selector, m.Readonly)
				}
			}
		}
		want := 0
		if hostUV != "" {
			want = 1
		}
		if venv != want || ensurepip != want || fetch != 1-want {
			t.Errorf("HostUV %q: %d bare venvs, %d ensurepip steps, %d fetches of uv; want %d, %d, %d", hostUV, venv, ensurepip, fetch, want, want, 1-want)
		}
	}
}

// TestWarmBuildsWhatTheImageReuses: while the resolve runs, Build solves the
// branches that need no lock; each is useless unless the image's graph holds
// the very same steps (same digests), and none may need the lock.
func TestWarmBuildsWhatTheImageReuses(t *testing.T) {
	dev := devEnv()
	dev.VSCodeExtensions = []ir.Package{{Name: "ms-python.python", Pos: pos(5)}}
	tests := []struct {
		name string
		env  *ir.Environment
		opts Options
		want []string // a step each warmed graph set must run
	}{
		{"apt", pythonEnv(), Options{}, []string{"apt-get install -y -q --no-install-recommends curl git"}},
		{"apt and pip beside uv from the host", pythonEnv(), Options{HostUV: "/uv"}, []string{"curl git", "ensurepip"}},
		{"dev: apt and extensions", dev, Options{}, []string{"curl git", "ms-python.python"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var warmed []*graph
			var mu sync.Mutex
			o := tt.opts
			o.Platform, o.Project = LinuxAMD64, "demo"
			res, err := Build(context.Background(), tt.env, o, Solver{
				Read: func(context.Context, *llb.Definition, string) ([]byte, error) {
					return report(t, "numpy=1.26.4", "six=1.16.0"), nil
				},
				Warm: func(_ context.Context, def *llb.Definition) error {
					mu.Lock()
					defer mu.Unlock()
					warmed = append(warmed, parseGraph(t, def))
					return nil
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			image := parseGraph(t, res.Def)
			var args []string
			for _, g := range warmed {
				for d, op := range g.ops {
					if op.GetOp() == nil {
						continue // the definition's terminal, which names its output
					}
					if _, ok := image.ops[d]; !ok {
						t.Errorf("warmed step %s is not in the image's graph: %v", d, op)
					}
					if e := op.GetExec(); e != nil {
						a := strings.Join(e.Meta.Args, " ")
						if strings.Contains(a, "--no-deps") || strings.Contains(a, "compile") {
							t.Errorf("warmed step needs the lock: %s", a)
						}
						args = append(args, a)
					}
				}
			}
			for _, w := range tt.want {
				if !strings.Contains(strings.Join(args, "\n"), w) {
					t.Errorf("no warmed step runs %q; warmed:\n%s", w, strings.Join(args, "\n"))
				}
			}
		})
	}
}

func TestWarmErrorFailsTheBuild(t *testing.T) {
	aptFailed := errors.New("apt: unable to locate package")
	_, err := Build(context.Background(), pythonEnv(), Options{Platform: LinuxAMD64, Project: "demo"}, Solver{
		Read: func(ctx context.Context, _ *llb.Definition, _ string) ([]byte, error) {
			<-ctx.Done() // a slow resolve, stopped by the failed branch
			return nil, ctx.Err()
		},
		Warm: func(context.Context, *llb.Definition) error { return aptFailed },
	})
	if !errors.Is(err, aptFailed) {
		t.Fatalf("Build = %v, want the warm step's error", err)
	}
}

// TestOneVertexPerLocalSource: every install step mounts uv from the host;
// with Build's one LocalID they share one source, sent once.
func TestOneVertexPerLocalSource(t *testing.T) {
	res, err := Build(context.Background(), devEnv(), Options{Platform: LinuxAMD64, Project: "demo", HostUV: "/uv"}, Solver{
		Read: func(context.Context, *llb.Definition, string) ([]byte, error) { return []byte(threeWheels), nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	sources := map[string]int{}
	for _, op := range parseGraph(t, res.Def).list {
		if s := op.GetSource(); s != nil && strings.HasPrefix(s.Identifier, "local://") {
			sources[s.Identifier]++
		}
	}
	for _, name := range []string{"local://" + LocalUV, "local://" + LocalAgent} {
		if sources[name] != 1 {
			t.Errorf("%s: %d sources in the graph, want 1 (all: %v)", name, sources[name], sources)
		}
	}
}
