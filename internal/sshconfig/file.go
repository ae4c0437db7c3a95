package sshconfig

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// updateFile rewrites path with fn(old contents) while holding a lock, so
// concurrent envd processes never lose each other's changes. A missing file
// reads as empty. Nothing is written when fn returns the contents unchanged.
func updateFile(path string, fn func(old []byte) ([]byte, error)) error {
	// Write to a symlink's target rather than replacing the link: dotfile
	// managers keep ~/.ssh/config as a link into a repository.
	target, err := resolveSymlinks(path)
	if err != nil {
		return err
	}
	dir := filepath.Dir(target)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	// The lock can't be on the file itself: rename swaps in a new inode, and a
	// waiter would then hold a lock on the old one.
	unlock, err := lockFile(filepath.Join(dir, "."+filepath.Base(target)+".envd.lock"))
	if err != nil {
		return err
	}
	defer unlock()

	old, err := os.ReadFile(target)
	var info fs.FileInfo
	switch {
	case err == nil:
		if info, err = os.Stat(target); err != nil {
			return err
		}
	case errors.Is(err, fs.ErrNotExist):
		old = nil
	default:
		return err
	}
	data, err := fn(old)
	if err != nil {
		return err
	}
	if bytes.Equal(data, old) {
		return nil
	}
	mode := fs.FileMode(0o600)
	if info != nil {
		mode = info.Mode().Perm()
	}
	return replaceFile(target, data, mode, info)
}

// replaceFile atomically replaces path with data: readers see the old file or
// the new one, never a half-written one. owner, if not nil, is the old file,
// whose owner is kept where permitted.
func replaceFile(path string, data []byte, mode fs.FileMode, owner fs.FileInfo) error {
	tmp, err := writeTemp(filepath.Dir(path), filepath.Base(path), data, mode, owner)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	syncDir(filepath.Dir(path))
	return nil
}

// writeTemp writes data to a new hidden file in dir, flushed to disk, and
// returns its name for the caller to rename or link into place.
func writeTemp(dir, base string, data []byte, mode fs.FileMode, owner fs.FileInfo) (string, error) {
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return "", err
	}
	err = f.Chmod(mode) // explicit, so the umask doesn't change it
	if err == nil && owner != nil {
		keepOwner(f, owner)
	}
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// syncDir makes a rename durable; best effort, as not every filesystem
// supports syncing a directory.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// resolveSymlinks follows path while it is a symlink and returns the final
// target, which may not exist yet (a dangling link is written through).
func resolveSymlinks(path string) (string, error) {
	for range 40 {
		fi, err := os.Lstat(path)
		if errors.Is(err, fs.ErrNotExist) {
			return path, nil
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			return path, nil
		}
		link, err := os.Readlink(path)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(link) {
			link = filepath.Join(filepath.Dir(path), link)
		}
		path = link
	}
	return "", fmt.Errorf("%s: too many levels of symbolic links", path)
}
