package compile

import (
	"path/filepath"
	"strings"
	"testing"

	"envd.dev/envd/internal/lang"
)

// TestArticleBlocksCompile: each code block of the article, verbatim,
// compiles to LLB (their ubuntu and nvidia/cuda bases are not pulled here).
func TestArticleBlocksCompile(t *testing.T) {
	files, _ := filepath.Glob("../lang/testdata/article*.envd")
	if len(files) < 3 {
		t.Fatalf("article blocks missing: %v", files)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			res, err := lang.Load(f, "build")
			if err != nil {
				t.Fatal(err)
			}
			g, _ := compileGraph(t, res.Env, Options{})
			for _, op := range g.list {
				if e := op.GetExec(); e != nil && strings.Contains(strings.Join(e.Meta.Args, " "), "uv python install") {
					t.Errorf("the distribution's python should be used, not a uv download: %q", e.Meta.Args)
				}
			}
			if strings.Contains(res.Env.Base.Image, "nvidia/cuda") {
				if res.Env.Base.Image != "docker.io/nvidia/cuda:11.6.2-cudnn8-devel-ubuntu20.04" {
					t.Errorf("cuda base = %s", res.Env.Base.Image)
				}
			}
		})
	}
}
