package compile

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"envd.dev/envd/internal/lang"
)

// Every build file of the corpus in the original envd's style loads and
// plans, and shows what its comments say: "# plan: TEXT" is in the plan,
// "# mount: PATH" is the envd_path of a runtime.mount (see its README).
func TestOriginalFiles(t *testing.T) {
	files, _ := filepath.Glob("../lang/testdata/original/*.envd")
	if len(files) < 17 {
		t.Fatalf("the corpus has %d files: %v", len(files), files)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			res, err := lang.Load(f, "")
			if err != nil {
				t.Fatal(err)
			}
			plan, err := Plan(context.Background(), res.Env, Options{Platform: LinuxAMD64, Project: "demo"})
			if err != nil {
				t.Fatal(err)
			}
			var mounts []string
			for _, m := range res.Env.Mounts {
				mounts = append(mounts, m.EnvdPath)
			}
			checked := res.Env.PipOptions != nil // TestOriginalPipOptionFiles checks those
			for _, line := range strings.Split(string(src), "\n") {
				if want, ok := strings.CutPrefix(line, "# plan: "); ok {
					checked = true
					if !strings.Contains(plan, want) {
						t.Errorf("plan lacks %q:\n%s", want, plan)
					}
				}
				if want, ok := strings.CutPrefix(line, "# mount: "); ok {
					checked = true
					if !slices.Contains(mounts, want) {
						t.Errorf("no mount at %s: %q", want, mounts)
					}
				}
			}
			if !checked {
				t.Error(`nothing to check: give "# plan: TEXT" or "# mount: PATH" lines`)
			}
		})
	}
}
