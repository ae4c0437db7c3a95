package lang

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"

	"envd.dev/envd/internal/ir"
)

// writeFiles creates files (path → content) under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// moduleRepo is a git repository made by a test, standing in for a team's
// shared module repository.
type moduleRepo struct {
	t    *testing.T
	dir  string
	repo *git.Repository
	n    int
}

func newModuleRepo(t *testing.T, dir string) *moduleRepo {
	t.Helper()
	repo, err := git.PlainInit(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	return &moduleRepo{t: t, dir: dir, repo: repo}
}

// commit writes files and commits them at a fixed time, so hashes are stable.
func (r *moduleRepo) commit(files map[string]string) string {
	r.t.Helper()
	writeFiles(r.t, r.dir, files)
	wt, err := r.repo.Worktree()
	if err != nil {
		r.t.Fatal(err)
	}
	if err := wt.AddGlob("."); err != nil {
		r.t.Fatal(err)
	}
	r.n++
	sig := &object.Signature{Name: "Team", Email: "team@example.com", When: time.Date(2024, 1, 1, 0, 0, r.n, 0, time.UTC)}
	h, err := wt.Commit("version", &git.CommitOptions{Author: sig, Committer: sig})
	if err != nil {
		r.t.Fatal(err)
	}
	return h.String()
}

func (r *moduleRepo) tag(name string) {
	r.t.Helper()
	head, err := r.repo.Head()
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.repo.CreateTag(name, head.Hash(), nil); err != nil {
		r.t.Fatal(err)
	}
}

// streamlitModule is the article's team function, as a module.
func streamlitModule(pkg string) string {
	return `def configure_streamlit(port):
    install.python_packages(["` + pkg + `"])
    runtime.expose(envd_port=port, host_port=port, service="streamlit")

def _private():
    pass
`
}

func pythonNames(env *ir.Environment) []string { return env.PythonNames() }

func readLockFile(t *testing.T, path string) *lock {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var l lock
	if err := json.Unmarshal(data, &l); err != nil {
		t.Fatal(err)
	}
	return &l
}

// The article's team pattern with a local file: include(path=...).
func TestIncludePath(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	writeFiles(t, dir, map[string]string{
		"build.envd": `lib = include(path="lib/streamlit.envd")
again = include(path="lib/streamlit.envd")
def build():
    base(os="ubuntu22.04", language="python3")
    lib.configure_streamlit(8501)
`,
		"lib/streamlit.envd": `print("loading")
` + streamlitModule("streamlit"),
	})
	var out bytes.Buffer
	res, err := Loader{Print: &out}.Load("build.envd", "")
	if err != nil {
		t.Fatal(err)
	}
	if got := pythonNames(res.Env); !reflect.DeepEqual(got, []string{"streamlit"}) {
		t.Errorf("python packages %q", got)
	}
	// Positions inside the module use its path.
	if got, want := res.Env.Expose[0].Pos, (ir.Pos{File: "lib/streamlit.envd", Line: 4, Col: 5}); got != want {
		t.Errorf("expose at %v, want %v", got, want)
	}
	if want := []string{"build.envd", "lib/streamlit.envd"}; !reflect.DeepEqual(res.Files, want) {
		t.Errorf("Files = %q, want %q", res.Files, want)
	}
	if out.String() != "loading\n" {
		t.Errorf("a module included twice ran %q, want once", out.String())
	}
	if _, err := os.Stat(LockFile); !os.IsNotExist(err) {
		t.Error("a path include wrote envd.lock")
	}
}

func TestIncludeErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		pos   ir.Pos
		want  string
	}{
		{"private name", map[string]string{
			"build.envd": "lib = include(path=\"lib.envd\")\n" + build("lib._private()"),
			"lib.envd":   streamlitModule("x"),
		}, at(3, 5), `module "lib.envd" has no function "_private"`},
		{"misspelt name", map[string]string{
			"build.envd": "lib = include(path=\"lib.envd\")\n" + build("lib.configure_streamlt(1)"),
			"lib.envd":   streamlitModule("x"),
		}, at(3, 5), `module "lib.envd" has no function "configure_streamlt"; did you mean "configure_streamlit"?`},
		{"error inside the module", map[string]string{
			"build.envd": "lib = include(path=\"lib.envd\")\n" + build("lib.configure_streamlit(0)"),
			"lib.envd":   streamlitModule("x"),
		}, ir.Pos{File: "lib.envd", Line: 3, Col: 5}, "envd_port 0 is out of range"},
		{"syntax error in the module", map[string]string{
			"build.envd": "lib = include(path=\"lib.envd\")\n" + build("pass"),
			"lib.envd":   "def f(:\n",
		}, ir.Pos{File: "lib.envd", Line: 1, Col: 8}, "syntax error"},
		{"cycle", map[string]string{
			"build.envd": "lib = include(path=\"lib/a.envd\")\n" + build("pass"),
			"lib/a.envd": "b = include(path=\"b.envd\")\n",
			"lib/b.envd": "a = include(path=\"../build.envd\")\n",
		}, ir.Pos{File: "lib/b.envd", Line: 1, Col: 5}, "include cycle: build.envd → lib/a.envd → lib/b.envd → build.envd"},
		{"module shadows a builtin", map[string]string{
			"build.envd": "lib = include(path=\"lib.envd\")\n" + build("lib.f()"),
			"lib.envd":   "def f():\n    pass\n\ndef install(x):\n    pass\n",
		}, ir.Pos{File: "lib.envd", Line: 4, Col: 5}, `def "install" would replace envd's builtin install`},
		{"NUL in a module", map[string]string{
			"build.envd": "lib = include(path=\"lib.envd\")\n" + build("lib.f()"),
			"lib.envd":   "def f():\n    pass\x00\n",
		}, ir.Pos{File: "lib.envd", Line: 2, Col: 9}, "NUL byte"},
		{"memory in a module", map[string]string{
			"build.envd": "lib = include(path=\"lib.envd\")\n" + build("lib.f()"),
			"lib.envd":   "def f():\n    return \"ab\" * 2000000000\n",
		}, ir.Pos{File: "lib.envd", Line: 2, Col: 12}, "memory limit"},
		{"not a file", map[string]string{
			"build.envd": "lib = include(path=\"lib\")\n" + build("pass"),
			"lib/x":      "",
		}, at(1, 7), "include: cannot read lib: not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			t.Chdir(dir)
			writeFiles(t, dir, tt.files)
			_, err := Load("build.envd", "")
			var e *ir.Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v, want an *ir.Error", err)
			}
			if e.Pos != tt.pos || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v\nwant %q at %v", err, tt.want, tt.pos)
			}
		})
	}
}

// A module repository with two versions: envd.lock pins the first; later
// loads use the pin without the network; UpdateModules moves it to the second.
func TestIncludeGitPinsAndUpdates(t *testing.T) {
	dir := t.TempDir()
	repoDir := filepath.Join(dir, "envdlib")
	repo := newModuleRepo(t, repoDir)
	first := repo.commit(map[string]string{"streamlit.envd": streamlitModule("streamlit==1.0")})

	proj := filepath.Join(dir, "proj")
	writeFiles(t, proj, map[string]string{"build.envd": `lib = include(git="` + repoDir + `", ref="master")
def build():
    lib.configure_streamlit(8501)
`})
	file := filepath.Join(proj, "build.envd")
	lockPath := filepath.Join(proj, LockFile)
	cache := filepath.Join(dir, "cache")
	load := func(l Loader) *Result {
		t.Helper()
		l.ModuleCache = cache
		res, err := l.Load(file, "")
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	pinned := func() string { return readLockFile(t, lockPath).Modules[0].Commit }

	res := load(Loader{})
	if got := pythonNames(res.Env); !reflect.DeepEqual(got, []string{"streamlit==1.0"}) {
		t.Fatalf("first load: %q", got)
	}
	if pinned() != first {
		t.Fatalf("lock pins %s, want %s", pinned(), first)
	}
	moduleFile := filepath.Join(cache, filepath.Base(repoCache{dir: cache}.repoDir(repoDir)), first, "streamlit.envd")
	if want := []string{file, moduleFile, lockPath}; !reflect.DeepEqual(res.Files, want) {
		t.Errorf("Files = %q\nwant %q", res.Files, want)
	}
	if res.Env.Expose[0].Pos.File != moduleFile {
		t.Errorf("position %v is not in the module file %s", res.Env.Expose[0].Pos, moduleFile)
	}

	second := repo.commit(map[string]string{"streamlit.envd": streamlitModule("streamlit==2.0")})

	// Pinned: the first version, from the cache, even with the repository gone.
	if err := os.Rename(repoDir, repoDir+".away"); err != nil {
		t.Fatal(err)
	}
	if got := pythonNames(load(Loader{}).Env); !reflect.DeepEqual(got, []string{"streamlit==1.0"}) {
		t.Errorf("pinned load: %q", got)
	}
	if err := os.Rename(repoDir+".away", repoDir); err != nil {
		t.Fatal(err)
	}

	// --update-modules moves the pin.
	if got := pythonNames(load(Loader{UpdateModules: true}).Env); !reflect.DeepEqual(got, []string{"streamlit==2.0"}) {
		t.Errorf("updated load: %q", got)
	}
	if pinned() != second {
		t.Errorf("lock pins %s after update, want %s", pinned(), second)
	}
	if got := pythonNames(load(Loader{}).Env); !reflect.DeepEqual(got, []string{"streamlit==2.0"}) {
		t.Errorf("load after update: %q", got)
	}
}

func TestIncludeGitFilesAndRefs(t *testing.T) {
	dir := t.TempDir()
	repoDir := filepath.Join(dir, "lib")
	repo := newModuleRepo(t, repoDir)
	repo.commit(map[string]string{
		"a.envd":            "def one():\n    install.apt_packages([\"one\"])\n",
		"b.envd":            "def two():\n    install.apt_packages([\"two\"])\n",
		"sub/c.envd":        "def three():\n    install.apt_packages([\"three\"])\n",
		"sub/deeper/d.envd": "def four():\n    install.apt_packages([\"four\"])\n",
		"README.md":         "not a module",
		".hidden/x.envd":    "def one():\n    pass\n", // not loaded: a hidden folder, as .git is
	})
	repo.tag("v1")
	if err := os.MkdirAll(filepath.Join(dir, "proj"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, include, call string
		want                []string
	}{
		{"every file, in folders too", `git="` + repoDir + `", ref="v1"`, "lib.one()\n    lib.two()\n    lib.three()\n    lib.four()", []string{"four", "one", "three", "two"}},
		{"a file by path", `git="` + repoDir + `", path="sub/c.envd"`, "lib.three()", []string{"three"}},
		// A relative path is relative to the including file, like path=.
		{"a repository beside the project", `git="../lib", path="sub/c.envd"`, "lib.three()", []string{"three"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "lib = include(" + tt.include + ")\n" + build(tt.call)
			res, err := Loader{ModuleCache: filepath.Join(dir, "cache")}.LoadSource(filepath.Join(dir, "proj", "build.envd"), []byte(src), "")
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Env.AptNames(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("apt packages %q, want %q", got, tt.want)
			}
		})
	}
}

func TestIncludeGitOffline(t *testing.T) {
	dir := t.TempDir()
	src := `lib = include(git="` + filepath.Join(dir, "repo") + `")` + "\n" + build("pass")
	_, err := Loader{Offline: true, ModuleCache: filepath.Join(dir, "cache")}.LoadSource(filepath.Join(dir, "build.envd"), []byte(src), "")
	if err == nil || !strings.Contains(err.Error(), "not in envd's module cache, and envd is offline") {
		t.Fatalf("got %v", err)
	}
}

func TestLockFormat(t *testing.T) {
	l := &lock{Version: lockVersion, Modules: []lockEntry{{Git: "https://b", Commit: strings.Repeat("1", 40)}, {Git: "https://a", Ref: "v2", Commit: strings.Repeat("2", 40)}}}
	pins := map[lockEntry]bool{{Git: "https://a", Ref: "v1", Commit: strings.Repeat("3", 40)}: true}
	want := `{
  "version": 1,
  "modules": [
    {
      "git": "https://a",
      "ref": "v1",
      "commit": "3333333333333333333333333333333333333333"
    },
    {
      "git": "https://a",
      "ref": "v2",
      "commit": "2222222222222222222222222222222222222222"
    },
    {
      "git": "https://b",
      "commit": "1111111111111111111111111111111111111111"
    }
  ]
}
`
	if got := string(l.merged(pins, false).encode()); got != want {
		t.Errorf("lock:\n%s\nwant:\n%s", got, want)
	}
	// --update-modules keeps only what the load used.
	if got := l.merged(pins, true).Modules; len(got) != 1 || got[0].Ref != "v1" {
		t.Errorf("updated lock keeps %+v", got)
	}

	dir := t.TempDir()
	for name, content := range map[string]string{
		"garbage": "{", "version": `{"version": 2, "modules": []}`, "short commit": `{"version": 1, "modules": [{"git": "x", "commit": "abc"}]}`,
	} {
		p := filepath.Join(dir, name)
		writeFiles(t, dir, map[string]string{name: content})
		if _, _, err := readLock(p); err == nil {
			t.Errorf("%s: lock accepted", name)
		}
	}
}

// A name defined by two files of a repository is an error at the include,
// naming both files, as in the original envd.
func TestIncludeGitDuplicateName(t *testing.T) {
	dir := t.TempDir()
	repoDir := filepath.Join(dir, "lib")
	repo := newModuleRepo(t, repoDir)
	repo.commit(map[string]string{
		"a.envd":         "def one():\n    pass\n",
		"tools/one.envd": "def one():\n    pass\n",
	})
	os.MkdirAll(filepath.Join(dir, "proj"), 0o755)
	src := "lib = include(git=\"" + repoDir + "\")\n" + build("lib.one()")
	_, err := Loader{ModuleCache: filepath.Join(dir, "cache")}.LoadSource(filepath.Join(dir, "proj", "build.envd"), []byte(src), "")
	if err == nil {
		t.Fatal("a name defined twice in the repository was accepted")
	}
	msg := err.Error()
	for _, want := range []string{"build.envd:1:", `defines "one" in both`, "a.envd", filepath.Join("tools", "one.envd"), "rename one of them"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
}
