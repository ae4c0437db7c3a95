package builder

import (
	"context"
	"errors"
	"fmt"
	"io"
	gofs "io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/tonistiigi/fsutil"
	"github.com/tonistiigi/fsutil/types"
)

// ChangedFileError is a file of a local directory that changed or vanished
// while it was sent to the builder. fsutil sends a file it cannot open as
// empty and carries on, so without this check the build would succeed with
// zero-byte files in the image.
type ChangedFileError struct {
	Path string // as the user knows it: below the build directory
	What string // "was removed", "changed size", ...
}

func (e *ChangedFileError) Error() string {
	return fmt.Sprintf("%s %s while envd was sending it to the builder; run envd build again", e.Path, e.What)
}

// checkedFS serves a directory like fsutil.NewFS, and records the first file
// whose content no longer matches what the walk reported (size and mtime)
// when it is sent.
type checkedFS struct {
	fsutil.FS
	dir string

	mu    sync.Mutex
	seen  map[string]*types.Stat
	first *ChangedFileError
}

func newCheckedFS(dir string) (*checkedFS, error) {
	fs, err := fsutil.NewFS(dir)
	if err != nil {
		return nil, err
	}
	return &checkedFS{FS: fs, dir: dir, seen: map[string]*types.Stat{}}, nil
}

// Err is the first change seen, or nil.
func (c *checkedFS) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.first == nil {
		return nil
	}
	return c.first
}

func (c *checkedFS) fail(p, what string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.first == nil {
		c.first = &ChangedFileError{Path: filepath.Join(c.dir, p), What: what}
	}
	return c.first
}

func (c *checkedFS) Walk(ctx context.Context, target string, fn gofs.WalkDirFunc) error {
	return c.FS.Walk(ctx, target, func(p string, entry gofs.DirEntry, err error) error {
		if err == nil && entry != nil {
			fi, ierr := entry.Info()
			if ierr != nil {
				// fsutil skips the rest of the directory on a vanished
				// entry; that must not pass unseen either.
				if errors.Is(ierr, os.ErrNotExist) {
					return c.fail(p, "was removed")
				}
				return ierr
			}
			if st, ok := fi.Sys().(*types.Stat); ok && fi.Mode().IsRegular() {
				c.mu.Lock()
				c.seen[p] = st
				c.mu.Unlock()
			}
		}
		return fn(p, entry, err)
	})
}

func (c *checkedFS) Open(p string) (io.ReadCloser, error) {
	c.mu.Lock()
	want := c.seen[p]
	c.mu.Unlock()
	rc, err := c.FS.Open(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, c.fail(p, "was removed")
		}
		return nil, c.fail(p, fmt.Sprintf("could not be read (%v)", err))
	}
	if want == nil {
		return rc, nil
	}
	if what := changed(rc, want); what != "" {
		rc.Close()
		return nil, c.fail(p, what)
	}
	return &checkedFile{ReadCloser: rc, c: c, p: p, want: want}, nil
}

// changed compares an open file with the walk's stat.
func changed(rc io.ReadCloser, want *types.Stat) string {
	f, ok := rc.(*os.File)
	if !ok {
		return ""
	}
	fi, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("could not be read (%v)", err)
	}
	if fi.Size() != want.Size {
		return "changed size"
	}
	if fi.ModTime().UnixNano() != want.ModTime {
		return "was modified"
	}
	return ""
}

// checkedFile counts what is read and checks the file again at its end, so
// a file written to while it is sent fails too.
type checkedFile struct {
	io.ReadCloser
	c    *checkedFS
	p    string
	want *types.Stat
	n    int64
}

func (f *checkedFile) Read(b []byte) (int, error) {
	n, err := f.ReadCloser.Read(b)
	f.n += int64(n)
	if f.n > f.want.Size {
		return n, f.c.fail(f.p, "grew")
	}
	if errors.Is(err, io.EOF) {
		if f.n != f.want.Size {
			return n, f.c.fail(f.p, "shrank")
		}
		if what := changed(f.ReadCloser, f.want); what != "" {
			return n, f.c.fail(f.p, what)
		}
	}
	return n, err
}
