package lang

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// checkGolden compares got with the file at path, or rewrites it with -update.
func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/lang -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s is out of date (review, then go test ./internal/lang -update):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// The messages people read, word for word: each golden file holds the
// error for one mistake. The build directory is shown as $DIR.
func TestErrorMessagesGolden(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string // the build directory; build.envd is loaded
		// repo, when set, is a module repository made at $DIR/envdlib with one
		// commit of these files, tagged v1.
		repo map[string]string
		lock string // envd.lock content
	}{
		{name: "syntax_error", files: map[string]string{"build.envd": "def build(:\n    base(os=\"ubuntu22.04\")\n"}},
		{name: "python_syntax", files: map[string]string{"build.envd": "import os\n" + build("pass")}},
		{name: "unknown_function", files: map[string]string{"build.envd": build(`bse(os="ubuntu20.04")`)}},
		{name: "unknown_module", files: map[string]string{"build.envd": build(`instal.python_packages(["numpy"])`)}},
		{name: "unknown_member", files: map[string]string{"build.envd": build(`install.python_pakages(name=["numpy"])`)}},
		{name: "unknown_keyword", files: map[string]string{"build.envd": build(`install.python_packages(nme=["numpy"])`)}},
		{name: "wrong_type", files: map[string]string{"build.envd": build(`install.python_packages(name=3)`)}},
		{name: "missing_argument", files: map[string]string{"build.envd": build(`install.cuda(cudnn="8")`)}},
		{name: "invalid_package", files: map[string]string{"build.envd": build(`install.python_packages(["numpy; rm -rf /"])`)}},
		{name: "pip_option_refused", files: map[string]string{"build.envd": build(`install.python_packages(["numpy", "mylib --target /opt/lib"])`)}},
		{name: "pip_option_no_value", files: map[string]string{"build.envd": build(`install.python_packages(["torch", "--index-url"])`)}},
		{name: "pip_option_bad_url", files: map[string]string{"build.envd": build(`install.python_packages(["torch -i download.pytorch.org/whl/cpu"])`)}},
		{name: "include_cycle", files: map[string]string{
			"build.envd": "lib = include(path=\"lib/a.envd\")\n" + build("pass"),
			"lib/a.envd": "b = include(path=\"b.envd\")\n",
			"lib/b.envd": "a = include(path=\"../build.envd\")\n",
		}},
		{name: "include_unreachable", files: map[string]string{
			"build.envd": "lib = include(git=\"$DIR/no-such-repo\", ref=\"v1\")\n" + build("pass"),
		}},
		{name: "include_missing_ref", repo: map[string]string{"lib.envd": "def f():\n    pass\n"}, files: map[string]string{
			"build.envd": "lib = include(git=\"$DIR/envdlib\", ref=\"v2\")\n" + build("pass"),
		}},
		{name: "lock_commit_missing", repo: map[string]string{"lib.envd": "def f():\n    pass\n"}, files: map[string]string{
			"build.envd": "lib = include(git=\"$DIR/envdlib\", ref=\"v1\")\n" + build("pass"),
		}, lock: `{"version": 1, "modules": [{"git": "$DIR/envdlib", "ref": "v1", "commit": "` + strings.Repeat("0123456789", 4) + `"}]}`},
		{name: "module_function_missing", files: map[string]string{
			"build.envd": "lib = include(path=\"lib.envd\")\n" + build("lib.configure_streamlt(8501)"),
			"lib.envd":   streamlitModule("streamlit"),
		}},
	}
	golden, err := filepath.Abs(filepath.Join("testdata", "golden"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			t.Chdir(dir)
			expand := func(s string) string { return strings.ReplaceAll(s, "$DIR", dir) }
			if tt.repo != nil {
				r := newModuleRepo(t, filepath.Join(dir, "envdlib"))
				r.commit(tt.repo)
				r.tag("v1")
			}
			for name, content := range tt.files {
				writeFiles(t, dir, map[string]string{name: expand(content)})
			}
			if tt.lock != "" {
				writeFiles(t, dir, map[string]string{LockFile: expand(tt.lock)})
			}
			_, err := Loader{ModuleCache: filepath.Join(dir, ".cache")}.Load("build.envd", "")
			if err == nil {
				t.Fatal("no error")
			}
			got := strings.ReplaceAll(err.Error(), dir, "$DIR") + "\n"
			checkGolden(t, filepath.Join(golden, tt.name+".golden"), got)
		})
	}
}
