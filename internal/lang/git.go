package lang

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"envd.dev/envd/internal/atomicfile"
	"envd.dev/envd/internal/ir"
	"envd.dev/envd/internal/xdg"
)

// fetchTimeout bounds one clone or fetch of a module repository.
const fetchTimeout = 2 * time.Minute

// gitModules are the git includes of one load: the lock beside the build
// file, the pins this load used, and the cache the repositories live in.
type gitModules struct {
	lockPath string
	lock     *lock
	raw      []byte // the lock file as read; nil when there was none
	pins     map[lockEntry]bool
	cache    repoCache
}

// gitModule returns the directory of url at ref, checked out at the commit
// envd.lock pins (fetched only when the cache lacks it), or at the ref's
// current commit when nothing pins it or the loader updates modules.
func (c *call) gitModule(url, ref string) (string, error) {
	s := c.s
	inc := s.includes()
	if inc.git == nil {
		g := &gitModules{lockPath: filepath.Join(filepath.Dir(s.path), LockFile), pins: map[lockEntry]bool{}}
		g.cache = repoCache{dir: s.opts.ModuleCache, offline: s.opts.Offline}
		if g.cache.dir == "" {
			g.cache.dir = filepath.Join(xdg.CacheDir(), "modules")
		}
		l, raw, err := readLock(g.lockPath)
		if err != nil {
			return "", ir.Errorf(ir.Pos{File: g.lockPath}, "fix it, or delete it and run envd build to pin the modules again", "%s is not a valid lock file: %v", LockFile, err)
		}
		if raw != nil {
			s.read = append(s.read, g.lockPath)
		}
		g.lock, g.raw, inc.git = l, raw, g
	}
	g := inc.git
	pinned := ""
	if !s.opts.UpdateModules {
		pinned = g.lock.commit(url, ref)
	}
	ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
	defer cancel()
	dir, commit, err := g.cache.module(ctx, localRepo(url, filepath.Dir(c.pos.File)), ref, pinned)
	if err != nil {
		return "", c.moduleError(err, g.lockPath)
	}
	g.pins[lockEntry{Git: url, Ref: ref, Commit: commit}] = true
	return dir, nil
}

// localRepo resolves a relative path to a repository against dir, the
// directory of the file that includes it, as include(path=) does. The lock
// keeps the path as written, so it holds for every checkout of the project.
func localRepo(url, dir string) string {
	if strings.Contains(url, "://") || filepath.IsAbs(url) {
		return url
	}
	if i := strings.Index(url, ":"); i > 0 && !strings.Contains(url[:i], "/") {
		return url // scp-like: git@github.com:team/envdlib
	}
	abs, err := filepath.Abs(filepath.Join(dir, url))
	if err != nil {
		return url
	}
	return abs
}

// writeLock records the pins of this load in envd.lock, when they changed.
func (s *state) writeLock() error {
	if s.inc == nil || s.inc.git == nil {
		return nil
	}
	g := s.inc.git
	data := g.lock.merged(g.pins, s.opts.UpdateModules).encode()
	if sameBytes(g.raw, data) {
		return nil
	}
	if err := atomicfile.Write(g.lockPath, data, 0o644); err != nil {
		return ir.Errorf(ir.Pos{File: g.lockPath}, "check that the build directory is writable", "cannot write %s: %v", LockFile, err)
	}
	if g.raw == nil {
		s.read = append(s.read, g.lockPath)
	}
	return nil
}

// Errors of the module cache, turned into messages at the include() call.
type (
	fetchError struct {
		url string
		err error
	}
	refError struct {
		url, ref string
		known    []string
	}
	commitError  struct{ url, ref, commit string }
	offlineError struct{ url string }
)

func (e *fetchError) Error() string { return fmt.Sprintf("cannot fetch %s: %v", e.url, e.err) }
func (e *refError) Error() string {
	return fmt.Sprintf("%s has no tag, branch or commit %q", e.url, e.ref)
}
func (e *commitError) Error() string {
	return fmt.Sprintf("commit %s of %s not found", e.commit, e.url)
}
func (e *offlineError) Error() string {
	return e.url + " is not in envd's module cache, and envd is offline"
}

func (c *call) moduleError(err error, lockPath string) error {
	var (
		fe *fetchError
		re *refError
		ce *commitError
		oe *offlineError
	)
	switch {
	case errors.As(err, &fe):
		return c.errorf("check the URL, the network and your access to the repository (ssh URLs use your ssh agent); a module pinned in envd.lock and fetched once needs no network",
			"include: %v", err)
	case errors.As(err, &re):
		hint := "use a tag, a branch or a commit of the repository"
		if len(re.known) > 0 {
			hint = "its branches and tags: " + strings.Join(re.known, ", ")
			if near := nearest(re.ref, re.known); near != "" {
				hint = fmt.Sprintf("did you mean %q? %s", near, hint)
			}
		}
		return c.errorf(hint, "include: %v", err)
	case errors.As(err, &ce):
		return c.errorf(fmt.Sprintf("the ref was rewritten (a force-push?) or the commit deleted: check what changed, then run envd build --update-modules to pin the current commit of %q", ce.ref),
			"include: %s pins %s (ref %q) to commit %s, which the repository no longer has", lockPath, ce.url, ce.ref, ce.commit)
	case errors.As(err, &oe):
		return c.errorf("build once with network access, so the module is fetched and pinned", "include: %v", err)
	}
	return c.errorf("", "include: %v", err)
}

// repoCache keeps a bare mirror of each module repository and one
// directory per commit checked out, under dir.
type repoCache struct {
	dir     string
	offline bool
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// repoDir names a repository's directory by its URL's last element (for
// people looking at the cache) and a hash of the URL (for uniqueness).
func (rc repoCache) repoDir(url string) string {
	sum := sha256.Sum256([]byte(url))
	base := unsafeChars.ReplaceAllString(strings.TrimSuffix(filepath.Base(strings.TrimRight(url, "/")), ".git"), "-")
	return filepath.Join(rc.dir, base+"-"+hex.EncodeToString(sum[:6]))
}

func (rc repoCache) module(ctx context.Context, url, ref, pinned string) (dir, commit string, err error) {
	if pinned != "" {
		dir := filepath.Join(rc.repoDir(url), pinned)
		if st, err := os.Stat(dir); err == nil && st.IsDir() {
			return dir, pinned, nil // no network
		}
	}
	repo, fresh, err := rc.open(ctx, url)
	if err != nil {
		return "", "", err
	}
	hash := plumbing.NewHash(pinned)
	if pinned == "" || !hasCommit(repo, hash) {
		if !fresh {
			if err := rc.fetch(ctx, repo, url); err != nil {
				return "", "", err
			}
		}
		if pinned != "" && !hasCommit(repo, hash) {
			return "", "", &commitError{url: url, ref: ref, commit: pinned}
		}
	}
	if pinned == "" {
		rev := ref
		if rev == "" {
			rev = "HEAD"
		}
		h, err := repo.ResolveRevision(plumbing.Revision(rev))
		if err != nil {
			return "", "", &refError{url: url, ref: ref, known: knownRefs(repo)}
		}
		hash = *h
	}
	dir, err = rc.checkout(repo, url, hash)
	return dir, hash.String(), err
}

// open opens the mirror of url, cloning it the first time.
func (rc repoCache) open(ctx context.Context, url string) (repo *git.Repository, fresh bool, err error) {
	path := filepath.Join(rc.repoDir(url), "repo.git")
	if repo, err := git.PlainOpen(path); err == nil {
		return repo, false, nil
	}
	if rc.offline {
		return nil, false, &offlineError{url: url}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, false, err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(path), ".clone-")
	if err != nil {
		return nil, false, err
	}
	defer os.RemoveAll(tmp)
	if _, err := git.PlainCloneContext(ctx, tmp, true, &git.CloneOptions{URL: url, Mirror: true}); err != nil {
		return nil, false, &fetchError{url: url, err: err}
	}
	// Another envd may have cloned it meanwhile; either copy will do.
	if err := os.Rename(tmp, path); err != nil && !os.IsExist(err) {
		if _, statErr := os.Stat(path); statErr != nil {
			return nil, false, err
		}
	}
	repo, err = git.PlainOpen(path)
	return repo, true, err
}

func (rc repoCache) fetch(ctx context.Context, repo *git.Repository, url string) error {
	if rc.offline {
		return &offlineError{url: url}
	}
	err := repo.FetchContext(ctx, &git.FetchOptions{Force: true, Prune: true, Tags: git.AllTags})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return &fetchError{url: url, err: err}
	}
	return nil
}

func hasCommit(repo *git.Repository, h plumbing.Hash) bool {
	_, err := repo.CommitObject(h)
	return err == nil
}

// knownRefs lists the tags and branches of a repository, for a hint.
func knownRefs(repo *git.Repository) []string {
	var names []string
	refs, err := repo.References()
	if err != nil {
		return nil
	}
	_ = refs.ForEach(func(r *plumbing.Reference) error {
		if n := r.Name(); n.IsTag() || n.IsBranch() {
			names = append(names, n.Short())
		}
		return nil
	})
	sort.Strings(names)
	return names
}

// checkout writes the files of commit h into their own directory, once:
// checkouts are immutable, so a pinned module needs no git at all.
func (rc repoCache) checkout(repo *git.Repository, url string, h plumbing.Hash) (string, error) {
	dir := filepath.Join(rc.repoDir(url), h.String())
	if _, err := os.Stat(dir); err == nil {
		return dir, nil
	}
	commit, err := repo.CommitObject(h)
	if err != nil {
		return "", err
	}
	tree, err := commit.Tree()
	if err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(rc.repoDir(url), ".checkout-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	err = tree.Files().ForEach(func(f *object.File) error {
		if f.Mode != filemode.Regular && f.Mode != filemode.Executable {
			return nil // symlinks and submodules are not module code
		}
		data, err := f.Contents()
		if err != nil {
			return err
		}
		target := filepath.Join(tmp, filepath.FromSlash(f.Name))
		if !strings.HasPrefix(target, tmp+string(filepath.Separator)) {
			return nil // a crafted tree must not write outside the checkout
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		return os.WriteFile(target, []byte(data), 0o644)
	})
	if err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, statErr := os.Stat(dir); statErr != nil {
			return "", err
		}
	}
	return dir, nil
}
