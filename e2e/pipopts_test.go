package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// TestPipOptionsInEntries: envd v1's pip options in name= entries, with uv
// and with pip (an index without uv). alpha comes from its entry's
// --index-url, which replaces config.pip_index's URL for the packages (that
// index's alpha 9.0 is never fetched), with its dependency; beta from an
// --extra-index-url. Each file is downloaded once, and a forced rebuild is
// all cached.
func TestPipOptionsInEntries(t *testing.T) {
	requireE2E(t)
	for _, tc := range []struct {
		installer string
		toolsUV   bool
	}{{"uv", true}, {"pip", false}} {
		t.Run(tc.installer, func(t *testing.T) {
			if !tc.toolsUV {
				t.Setenv("XDG_CACHE_HOME", t.TempDir()) // no uv kept by earlier builds
			}
			tools := startIndex(t, tc.toolsUV, nil, wheel{name: "alpha", version: "9.0"})
			main := startIndex(t, false, nil, wheel{name: "alpha", version: "1.0", requires: []string{"gamma"}}, wheel{name: "gamma", version: "3.0"})
			extra := startIndex(t, false, nil, wheel{name: "beta", version: "2.0"})
			name := "e2e-pip-options-" + tc.installer
			dir := project(t, name, map[string]string{"build.envd": fmt.Sprintf(`def build():
    base(image="debian:bookworm")
    install.python()
    config.pip_index(url=%q, trust=True)
    install.python_packages(name=[
        "alpha --index-url %s --trusted-host 127.0.0.1",
        "--extra-index-url",
        "%s",
        "beta",
    ])
`, tools.URL(), main.URL(), extra.URL())})
			image := name + ":dev"
			removeImage(t, image)
			t.Cleanup(func() { removeImage(t, image) })

			first := build(t, dir)
			if first.PythonInstaller != tc.installer {
				t.Errorf("installed with %q, want %s", first.PythonInstaller, tc.installer)
			}
			if installs := installSteps(first); len(installs) != 3 {
				t.Errorf("%d install steps, want one per distribution (3): %q", len(installs), installs)
			}
			out := runInImage(t, image, "python", "-c", "import alpha, beta, gamma; print(alpha.__version__, beta.__version__, gamma.__version__)")
			if strings.TrimSpace(out) != "1.0 2.0 3.0" {
				t.Errorf("imports in the image printed %q, want 1.0 2.0 3.0", out)
			}
			for _, w := range []struct {
				file  string
				index interface{ Downloads(string) int }
				want  int
			}{
				{"alpha-1.0-py3-none-any.whl", main, 1},
				{"gamma-3.0-py3-none-any.whl", main, 1},
				{"beta-2.0-py3-none-any.whl", extra, 1},
				{"alpha-9.0-py3-none-any.whl", tools, 0},
			} {
				if n := w.index.Downloads(w.file); n != w.want {
					t.Errorf("%s downloaded %d times, want %d", w.file, n, w.want)
				}
			}

			main.Reset()
			extra.Reset()
			forced := build(t, dir, "--force")
			if forced.Steps == 0 || forced.Cached != forced.Steps {
				t.Errorf("forced rebuild: %d of %d steps cached, want all; ran %q", forced.Cached, forced.Steps, forced.Ran)
			}
			if n := main.TotalDownloads() + extra.TotalDownloads(); n != 0 {
				t.Errorf("the forced rebuild downloaded %d files, want 0", n)
			}
		})
	}
}
