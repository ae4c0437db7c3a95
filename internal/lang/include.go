package lang

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"go.starlark.net/starlark"
)

// includes is the bookkeeping of include() in one load: which files are
// running (to catch cycles), which modules are done (each file runs once),
// and the git pins (lock.go).
type includes struct {
	running []string // files being executed, the build file first
	done    map[string]*module
	git     *gitModules // nil until the first git include
}

func (s *state) includes() *includes {
	if s.inc == nil {
		s.inc = &includes{running: []string{s.path}, done: map[string]*module{}}
	}
	return s.inc
}

// include runs another .envd file, or every .envd file of a git repository,
// and returns a module of their public names (those not starting with _).
func include(c *call, a args) (starlark.Value, error) {
	gitURL, ref, path := a.str("git", ""), a.str("ref", ""), a.str("path", "")
	if gitURL == "" {
		switch {
		case ref != "":
			return nil, c.errorf(`give the repository too: include(git="https://...", ref="`+ref+`")`, "include: ref needs git")
		case path == "":
			return nil, c.errorf(`include(git="https://github.com/team/envdlib", ref="v1") or include(path="lib.envd")`, "include: give git (a repository) or path (a .envd file)")
		}
		file := path
		if !filepath.IsAbs(file) {
			// Relative to the file that calls include, as imports are.
			file = filepath.Join(filepath.Dir(c.pos.File), path)
		}
		return c.includeFiles(fmt.Sprintf("module %q", path), []string{file})
	}
	dir, err := c.gitModule(gitURL, ref)
	if err != nil {
		return nil, err
	}
	files, err := c.moduleFiles(dir, gitURL, path)
	if err != nil {
		return nil, err
	}
	name := gitURL
	if ref != "" {
		name += "@" + ref
	}
	return c.includeFiles(fmt.Sprintf("module %q", name), files)
}

// moduleFiles are the files of a checked-out repository that include runs:
// the one path names, or every .envd file in it.
func (c *call) moduleFiles(dir, url, path string) ([]string, error) {
	if path != "" {
		file := filepath.Join(dir, filepath.FromSlash(path))
		if rel, err := filepath.Rel(dir, file); err != nil || strings.HasPrefix(rel, "..") {
			return nil, c.errorf("give a path inside the repository", "include: path %q is outside %s", path, url)
		}
		return []string{file}, nil
	}
	files, err := envdFilesIn(dir)
	if err != nil {
		return nil, c.errorf("", "include: reading %s: %v", url, err)
	}
	if len(files) == 0 {
		return nil, c.errorf(`include a repository with .envd files, or name a file in it with path="dir/lib.envd"`, "include: %s has no .envd file", url)
	}
	return files, nil
}

// envdFilesIn is every .envd file below dir, in its folders too (as the
// original envd loads a repository), sorted by path; hidden folders such
// as .git are skipped.
func envdFilesIn(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && p != dir && strings.HasPrefix(d.Name(), "."):
			return filepath.SkipDir
		case !d.IsDir() && strings.HasSuffix(d.Name(), ".envd") && d.Type().IsRegular():
			files = append(files, p)
		}
		return nil
	})
	sort.Strings(files)
	return files, err
}

// includeFiles runs files (once per load) and gathers their public names.
func (c *call) includeFiles(name string, files []string) (starlark.Value, error) {
	inc := c.s.includes()
	key := strings.Join(files, "\n")
	if m, ok := inc.done[key]; ok {
		return m, nil
	}
	m := &module{name: name, members: map[string]starlark.Value{}}
	from := map[string]string{}
	for _, file := range files {
		globals, err := c.runModule(file)
		if err != nil {
			return nil, err
		}
		globals.Freeze()
		for _, k := range globals.Keys() {
			if strings.HasPrefix(k, "_") {
				continue
			}
			if other, dup := from[k]; dup {
				return nil, c.errorf("rename one of them, or include one file with path=", "include: %s defines %q in both %s and %s", name, k, other, file)
			}
			from[k] = file
			m.members[k] = globals[k]
			m.names = append(m.names, k)
		}
	}
	sort.Strings(m.names)
	inc.done[key] = m
	return m, nil
}

// runModule executes one module file on the caller's thread, so it shares
// the load's step budget and records into the same environment.
func (c *call) runModule(file string) (starlark.StringDict, error) {
	inc := c.s.includes()
	for i, f := range inc.running {
		if sameFile(f, file) {
			cycle := append(append([]string{}, inc.running[i:]...), file)
			return nil, c.errorf("move what both need into a third file that includes neither",
				"include cycle: %s", strings.Join(cycle, " → "))
		}
	}
	src, err := readModule(file)
	if err != nil {
		return nil, c.errorf(fmt.Sprintf("a path is relative to the file that calls include (%s)", filepath.Dir(c.pos.File)),
			"include: cannot read %s: %v", file, err)
	}
	inc.running = append(inc.running, file)
	defer func() { inc.running = inc.running[:len(inc.running)-1] }()
	return c.s.exec(c.thread, file, src)
}

// readModule reads a regular file, so that a path to a device or a pipe
// cannot hang the load.
func readModule(file string) ([]byte, error) {
	st, err := os.Stat(file)
	if err != nil {
		return nil, unwrapPathError(err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file")
	}
	return os.ReadFile(file)
}

func sameFile(a, b string) bool {
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}
	x, errA := os.Stat(a)
	y, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(x, y)
}
