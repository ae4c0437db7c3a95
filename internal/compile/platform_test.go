package compile

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"

	"envd.dev/envd/internal/ir"
)

// Every op of the graph, the base image's source included, is of the
// target platform (BuildKit would otherwise use the builder's), every
// toolchain is downloaded for its CPU, and the image config says it.
func TestPlatformReachesEveryOpAndDownload(t *testing.T) {
	tests := []struct {
		platform      Platform
		arch, variant string
		urls          []string
	}{
		{LinuxAMD64, "amd64", "", []string{
			"https://static.rust-lang.org/rustup/dist/x86_64-unknown-linux-gnu/rustup-init",
			"https://go.dev/dl/go1.25.3.linux-amd64.tar.gz",
			"https://nodejs.org/dist/v22.11.0/node-v22.11.0-linux-x64.tar.gz",
			"https://julialang-s3.julialang.org/bin/linux/x64/1.10/julia-1.10.7-linux-x86_64.tar.gz",
			"https://github.com/prefix-dev/pixi/releases/download/v0.48.0/pixi-x86_64-unknown-linux-musl.tar.gz",
			"https://download2.rstudio.org/server/jammy/amd64/rstudio-server-" + rstudioDeb + "-amd64.deb",
		}},
		{LinuxARM64, "arm64", "v8", []string{
			"https://static.rust-lang.org/rustup/dist/aarch64-unknown-linux-gnu/rustup-init",
			"https://go.dev/dl/go1.25.3.linux-arm64.tar.gz",
			"https://nodejs.org/dist/v22.11.0/node-v22.11.0-linux-arm64.tar.gz",
			"https://julialang-s3.julialang.org/bin/linux/aarch64/1.10/julia-1.10.7-linux-aarch64.tar.gz",
			"https://github.com/prefix-dev/pixi/releases/download/v0.48.0/pixi-aarch64-unknown-linux-musl.tar.gz",
			"https://download2.rstudio.org/server/jammy/arm64/rstudio-server-" + rstudioDeb + "-arm64.deb",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.platform.String(), func(t *testing.T) {
			env := languagesEnv() // python, uv, rust, go, node.js, julia, pixi, R
			env.Base = ir.Base{Image: "docker.io/library/ubuntu:22.04", Dev: true}
			env.R.RStudio = true
			g, res := compileGraph(t, env, Options{Platform: tt.platform,
				Lock: []Distribution{{Name: "six", Version: "1", URL: "http://127.0.0.1:9/six.whl"}}, Installer: InstallerUV, HostUV: "0.13.9-linux-" + tt.arch})
			checkOpsPlatform(t, g, tt.arch)
			if s := g.source(t, "docker-image://docker.io/library/ubuntu:22.04"); s == nil {
				t.Fatal("no base image source")
			}
			for _, url := range tt.urls {
				g.source(t, url)
			}
			for _, op := range g.list {
				if s := op.GetSource(); s != nil && strings.HasPrefix(s.Identifier, "https://") && !contains(tt.urls, s.Identifier) {
					t.Errorf("download %s not for %s", s.Identifier, tt.platform)
				}
			}
			// uv comes from the host's cache directory of the platform.
			if s := g.source(t, "local://"+LocalUV); !strings.Contains(s.Attrs[pb.AttrFollowPaths], "0.13.9-linux-"+tt.arch+"/bin/uv") {
				t.Errorf("uv source %v", s.Attrs)
			}
			if c := res.Config; c.OS != "linux" || c.Architecture != tt.arch || c.Variant != tt.variant {
				t.Errorf("image config %s/%s/%s, want linux/%s/%s", c.OS, c.Architecture, c.Variant, tt.arch, tt.variant)
			}

			conda := pythonEnv()
			conda.Conda = &ir.Conda{}
			g, _ = compileGraph(t, conda, Options{Platform: tt.platform})
			g.source(t, micromambaURL(tt.platform))
			if !strings.HasSuffix(micromambaURL(tt.platform), map[string]string{"amd64": "/micromamba-linux-64", "arm64": "/micromamba-linux-aarch64"}[tt.arch]) {
				t.Errorf("micromamba %s", micromambaURL(tt.platform))
			}

			// The resolve step that runs before the graph is compiled too.
			var resolve *llb.Definition
			stop := errors.New("stop after the resolve step")
			_, err := Build(context.Background(), pythonEnv(), Options{Project: "demo", Platform: tt.platform},
				Solver{Read: func(_ context.Context, def *llb.Definition, _ string) ([]byte, error) {
					resolve = def
					return nil, stop
				}})
			if !errors.Is(err, stop) || resolve == nil {
				t.Fatalf("build: %v", err)
			}
			checkOpsPlatform(t, parseGraph(t, resolve), tt.arch)
		})
	}
}

// checkOpsPlatform: the steps and the images are of the platform. LLB
// leaves it out of the ops it does not matter to (local and http sources,
// merges, diffs), and no op has another.
func checkOpsPlatform(t *testing.T, g *graph, arch string) {
	t.Helper()
	steps := 0
	for _, op := range g.list {
		p := op.Platform
		needed := op.GetExec() != nil || strings.HasPrefix(op.GetSource().GetIdentifier(), "docker-image://")
		if needed {
			steps++
		}
		if (needed || p != nil) && (p == nil || p.OS != "linux" || p.Architecture != arch) {
			t.Errorf("op %T has platform %v, want linux/%s", op.Op, p, arch)
		}
	}
	if steps == 0 {
		t.Error("no steps")
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestPlatformRequiredAndChecked(t *testing.T) {
	for _, p := range []Platform{{}, {Arch: "riscv64"}} {
		if _, err := Compile(context.Background(), pythonEnv(), Options{Platform: p}); err == nil {
			t.Errorf("%q: compiled", p.Arch)
		}
	}
	// RStudio Server has no arm64 build for focal: said at R's line.
	env := devEnv()
	env.Base.Image = "docker.io/library/ubuntu:20.04"
	env.R = &ir.R{RStudio: true, Pos: pos(5)}
	if _, err := Compile(context.Background(), env, Options{Platform: LinuxAMD64}); err != nil {
		t.Errorf("amd64 focal: %v", err)
	}
	_, err := Build(context.Background(), env, Options{Platform: LinuxARM64}, Solver{})
	var irErr *ir.Error
	if !errors.As(err, &irErr) || irErr.Pos != pos(5) || !strings.Contains(err.Error(), "RStudio Server has no linux/arm64 build for Ubuntu 20.04") {
		t.Errorf("arm64 focal: %v", err)
	}
}

func TestAgentFile(t *testing.T) {
	g, _ := compileGraph(t, devEnv(), Options{Platform: LinuxARM64, AgentFile: "envd-agent-linux-arm64"})
	if s := g.source(t, "local://"+LocalAgent); s.Attrs[pb.AttrFollowPaths] != `["envd-agent-linux-arm64"]` {
		t.Errorf("agent source %v", s.Attrs)
	}
	var copied bool
	for _, op := range g.list {
		if f := op.GetFile(); f != nil {
			for _, a := range f.Actions {
				if cp := a.GetCopy(); cp != nil && cp.Dest == AgentPath {
					copied = cp.Src == "/envd-agent-linux-arm64"
				}
			}
		}
	}
	if !copied {
		t.Error("the agent is not copied from envd-agent-linux-arm64")
	}
}
