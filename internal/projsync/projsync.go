// Package projsync copies a project directory between the user's machine
// and an environment over sftp (the agent serves it), for runtimes where the
// project is not a bind mount: a Kubernetes claim, a remote server.
//
// Both ways it sends only what differs (by size and modification time),
// keeps modes, times and symbolic links, deletes nothing on the other side,
// and skips what the project's .envdignore names (gitignore syntax). .git
// is copied like any directory, so commits can be made on either side;
// .envdignore can leave it out.
package projsync

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
	"github.com/pkg/sftp"
)

// IgnoreFile is read from the project's root.
const IgnoreFile = ".envdignore"

// Stats says what a copy did.
type Stats struct {
	Files     int   // files written
	Bytes     int64 // bytes written
	Unchanged int   // files already the same on the other side
}

func (s Stats) String() string {
	return fmt.Sprintf("%d files (%s) copied, %d unchanged", s.Files, humanBytes(s.Bytes), s.Unchanged)
}

// Ignore matches the paths .envdignore excludes.
type Ignore struct{ m gitignore.Matcher }

// LoadIgnore reads dir/.envdignore; a missing file ignores nothing.
func LoadIgnore(dir string) (*Ignore, error) {
	f, err := os.Open(filepath.Join(dir, IgnoreFile))
	if errors.Is(err, fs.ErrNotExist) {
		return &Ignore{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ps []gitignore.Pattern
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), " \t\r")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		ps = append(ps, gitignore.ParsePattern(line, nil))
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return &Ignore{m: gitignore.NewMatcher(ps)}, nil
}

// Match says whether rel (slash-separated, relative to the root) is ignored.
func (i *Ignore) Match(rel string, isDir bool) bool {
	if i == nil || i.m == nil {
		return false
	}
	return i.m.Match(strings.Split(rel, "/"), isDir)
}

// Push copies local into remote (created if missing).
func Push(c *sftp.Client, local, remote string, ign *Ignore) (Stats, error) {
	var st Stats
	if err := c.MkdirAll(remote); err != nil {
		return st, fmt.Errorf("create %s in the environment: %w", remote, err)
	}
	err := filepath.WalkDir(local, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(local, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if ign.Match(rel, d.IsDir()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		dst := path.Join(remote, rel)
		switch {
		case d.IsDir():
			if err := c.Mkdir(dst); err != nil {
				if fi, serr := c.Lstat(dst); serr != nil || !fi.IsDir() {
					return fmt.Errorf("create %s in the environment: %w", dst, err)
				}
			}
			return c.Chmod(dst, info.Mode().Perm())
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if old, err := c.ReadLink(dst); err == nil && old == target {
				st.Unchanged++
				return nil
			}
			c.Remove(dst)
			return c.Symlink(target, dst)
		case info.Mode().IsRegular():
			if fi, err := c.Lstat(dst); err == nil && same(fi, info) {
				st.Unchanged++
				return nil
			}
			n, err := pushFile(c, p, dst, info)
			st.Files++
			st.Bytes += n
			return err
		}
		return nil // sockets, devices: not part of a project
	})
	return st, err
}

func pushFile(c *sftp.Client, src, dst string, info fs.FileInfo) (int64, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	out, err := c.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return 0, fmt.Errorf("write %s in the environment: %w", dst, err)
	}
	n, err := out.ReadFrom(in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("write %s in the environment: %w", dst, err)
	}
	if err := c.Chmod(dst, info.Mode().Perm()); err != nil {
		return n, err
	}
	return n, c.Chtimes(dst, info.ModTime(), info.ModTime())
}

// Pull copies remote into local (created if missing).
func Pull(c *sftp.Client, remote, local string, ign *Ignore) (Stats, error) {
	var st Stats
	if err := os.MkdirAll(local, 0o755); err != nil {
		return st, err
	}
	w := c.Walk(remote)
	for w.Step() {
		if err := w.Err(); err != nil {
			return st, fmt.Errorf("read %s in the environment: %w", w.Path(), err)
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(w.Path(), remote), "/")
		if rel == "" {
			continue
		}
		info := w.Stat()
		if ign.Match(rel, info.IsDir()) {
			if info.IsDir() {
				w.SkipDir()
			}
			continue
		}
		dst := filepath.Join(local, filepath.FromSlash(rel))
		if !inside(local, dst) {
			return st, fmt.Errorf("the environment sent a path outside the project: %s", w.Path())
		}
		switch {
		case info.IsDir():
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return st, err
			}
			if err := os.Chmod(dst, info.Mode().Perm()); err != nil {
				return st, err
			}
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := c.ReadLink(w.Path())
			if err != nil {
				return st, err
			}
			if old, err := os.Readlink(dst); err == nil && old == target {
				st.Unchanged++
				continue
			}
			os.Remove(dst)
			if err := os.Symlink(target, dst); err != nil {
				return st, err
			}
		case info.Mode().IsRegular():
			if fi, err := os.Lstat(dst); err == nil && same(fi, info) {
				st.Unchanged++
				continue
			}
			n, err := pullFile(c, w.Path(), dst, info)
			st.Files++
			st.Bytes += n
			if err != nil {
				return st, err
			}
		}
	}
	return st, nil
}

// pullFile writes beside the target and renames, so an interrupted copy
// never leaves a half file where the user's was.
func pullFile(c *sftp.Client, src, dst string, info fs.FileInfo) (int64, error) {
	in, err := c.Open(src)
	if err != nil {
		return 0, fmt.Errorf("read %s in the environment: %w", src, err)
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".envd-sync-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name())
	n, err := io.Copy(tmp, in)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("read %s in the environment: %w", src, err)
	}
	if err := os.Chmod(tmp.Name(), info.Mode().Perm()); err != nil {
		return n, err
	}
	if err := os.Chtimes(tmp.Name(), info.ModTime(), info.ModTime()); err != nil {
		return n, err
	}
	return n, os.Rename(tmp.Name(), dst)
}

// same: a file of the same size and modification time (to the second: what
// sftp carries) is taken as unchanged, as rsync does by default.
func same(a, b fs.FileInfo) bool {
	return a.Mode().IsRegular() && a.Size() == b.Size() && a.ModTime().Unix() == b.ModTime().Unix()
}

func inside(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
