package lang

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
)

// LockFile pins every git module by commit; it sits beside the build file so
// a teammate's build runs the same module code.
const LockFile = "envd.lock"

// lock is envd.lock: JSON, entries sorted, so that it diffs well.
type lock struct {
	Version int         `json:"version"`
	Modules []lockEntry `json:"modules"`
}

type lockEntry struct {
	Git    string `json:"git"`
	Ref    string `json:"ref,omitempty"`
	Commit string `json:"commit"`
}

const lockVersion = 1

var commitHash = regexp.MustCompile(`^[0-9a-f]{40}$`)

// readLock reads path; a missing file is an empty lock.
func readLock(path string) (l *lock, raw []byte, err error) {
	raw, err = os.ReadFile(path)
	if os.IsNotExist(err) {
		return &lock{Version: lockVersion}, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	l = &lock{}
	if err := json.Unmarshal(raw, l); err != nil {
		return nil, nil, err
	}
	if l.Version != lockVersion {
		return nil, nil, fmt.Errorf("version %d, this envd reads version %d", l.Version, lockVersion)
	}
	for _, m := range l.Modules {
		if m.Git == "" || !commitHash.MatchString(m.Commit) {
			return nil, nil, fmt.Errorf("entry %+v needs git and a 40-digit commit", m)
		}
	}
	return l, raw, nil
}

// commit returns the pin of git at ref, or "".
func (l *lock) commit(git, ref string) string {
	for _, m := range l.Modules {
		if m.Git == git && m.Ref == ref {
			return m.Commit
		}
	}
	return ""
}

// merged is l with pins applied; with only, entries not in pins are dropped
// (--update-modules rewrites the lock from what this load used).
func (l *lock) merged(pins map[lockEntry]bool, only bool) *lock {
	byKey := map[[2]string]string{}
	if !only {
		for _, m := range l.Modules {
			byKey[[2]string{m.Git, m.Ref}] = m.Commit
		}
	}
	for p := range pins {
		byKey[[2]string{p.Git, p.Ref}] = p.Commit
	}
	out := &lock{Version: lockVersion, Modules: []lockEntry{}}
	for k, commit := range byKey {
		out.Modules = append(out.Modules, lockEntry{Git: k[0], Ref: k[1], Commit: commit})
	}
	sort.Slice(out.Modules, func(i, j int) bool {
		a, b := out.Modules[i], out.Modules[j]
		return a.Git < b.Git || a.Git == b.Git && a.Ref < b.Ref
	})
	return out
}

func (l *lock) encode() []byte {
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		panic(err) // plain data: cannot fail
	}
	return append(b, '\n')
}

// sameBytes reports whether writing data would change nothing.
func sameBytes(old, data []byte) bool { return old != nil && bytes.Equal(old, data) }
