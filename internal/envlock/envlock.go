// Package envlock serialises the commands that create or remove one
// environment (envd up, down, destroy): an exclusive flock on a small file
// beside the environment's state directory. A lock dies with its holder, so
// a killed envd never leaves a stale one.
package envlock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Lock is a held lock.
type Lock struct {
	f    *os.File
	path string
}

// Holder is who holds a lock, as its holder wrote it.
type Holder struct {
	PID    int
	Action string // "starting", "removing"
}

// BusyError: the lock was not free within the bound.
type BusyError struct {
	Holder Holder
	Waited time.Duration
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("another envd (pid %d) is still %s it after %s", e.Holder.PID, e.Holder.Action, e.Waited.Round(time.Second))
}

// poll is how often a waiter tries again; flock has no timeout of its own.
const poll = 100 * time.Millisecond

// Acquire takes the lock at path, waiting up to bound while another process
// holds it; onWait is called once, with the holder, when it has to wait.
// The holder's pid and action are written into the file for the next waiter.
func Acquire(ctx context.Context, path, action string, bound time.Duration, onWait func(Holder)) (*Lock, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	start := time.Now()
	waited := false
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, err
		}
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			if same(f, path) {
				l := &Lock{f: f, path: path}
				l.write(action)
				return l, nil
			}
			// The holder removed the file before letting go: lock the new one.
			f.Close()
			continue
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		h := readHolder(f)
		f.Close()
		if !waited && onWait != nil {
			onWait(h)
		}
		waited = true
		if time.Since(start) >= bound {
			return nil, &BusyError{Holder: h, Waited: time.Since(start)}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(poll):
		}
	}
}

// same reports whether the open file is still the one at path.
func same(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(path)
	return err == nil && os.SameFile(a, b)
}

func (l *Lock) write(action string) {
	l.f.Truncate(0)
	l.f.WriteAt([]byte(fmt.Sprintf("%d %s\n", os.Getpid(), action)), 0)
}

func readHolder(f *os.File) Holder {
	b := make([]byte, 128)
	n, _ := f.ReadAt(b, 0)
	pid, action, _ := strings.Cut(strings.TrimSpace(string(b[:n])), " ")
	h := Holder{Action: action}
	h.PID, _ = strconv.Atoi(pid)
	if h.Action == "" {
		h.Action = "using"
	}
	return h
}

// Release lets go of the lock; the file stays for the next user.
func (l *Lock) Release() {
	if l == nil || l.f == nil {
		return
	}
	l.f.Close() // closing the last descriptor drops the flock
	l.f = nil
}

// Remove deletes the lock file, then lets go: a waiter that opened the old
// file notices and locks a new one.
func (l *Lock) Remove() {
	if l == nil || l.f == nil {
		return
	}
	os.Remove(l.path)
	l.Release()
}
