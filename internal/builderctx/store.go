package builderctx

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"envd.dev/envd/internal/atomicfile"

	"envd.dev/envd/internal/xdg"
)

// Store is the set of contexts in one contexts.json. Every call re-reads the
// file, so several envd processes see each other's changes; each write
// replaces the file atomically.
type Store struct{ path string }

// file is the JSON layout of contexts.json. "default" is never stored.
type file struct {
	Current  string    `json:"current,omitempty"`
	Contexts []Context `json:"contexts"`
}

// Open returns the store in dir (default xdg.ConfigDir()). A missing file is
// an empty store; a corrupt one is an error now rather than at first use.
func Open(dir string) (*Store, error) {
	if dir == "" {
		dir = xdg.ConfigDir()
	}
	s := &Store{path: filepath.Join(dir, "contexts.json")}
	if _, err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

func defaultContext() Context { return Context{Name: Default, Builder: Managed} }

// List returns every context, "default" first, and the current one's name.
func (s *Store) List() ([]Context, string, error) {
	f, err := s.load()
	if err != nil {
		return nil, "", err
	}
	return append([]Context{defaultContext()}, f.Contexts...), f.current(), nil
}

// Create validates c and adds it.
func (s *Store) Create(c Context) error {
	c, err := validate(c)
	if err != nil {
		return err
	}
	f, err := s.load()
	if err != nil {
		return err
	}
	if _, ok := f.find(c.Name); ok {
		return &Error{Kind: ErrExists, Msg: fmt.Sprintf("context %q already exists", c.Name),
			Hint: fmt.Sprintf("choose another name, or remove it first: `envd context rm %s`", c.Name)}
	}
	f.Contexts = append(f.Contexts, c)
	return s.save(f)
}

// Use makes name the current context.
func (s *Store) Use(name string) error {
	f, err := s.load()
	if err != nil {
		return err
	}
	if name != Default {
		if _, ok := f.find(name); !ok {
			return notFound(name)
		}
	}
	f.Current = name
	if name == Default {
		f.Current = ""
	}
	return s.save(f)
}

// Remove deletes a context; removing the current one makes "default" current.
func (s *Store) Remove(name string) error {
	if name == Default {
		return &Error{Kind: ErrBuiltin, Msg: `the context "default" is built in and cannot be removed`}
	}
	f, err := s.load()
	if err != nil {
		return err
	}
	i, ok := f.find(name)
	if !ok {
		return notFound(name)
	}
	f.Contexts = append(f.Contexts[:i], f.Contexts[i+1:]...)
	if f.Current == name {
		f.Current = ""
	}
	return s.save(f)
}

// Current returns the current context.
func (s *Store) Current() (Context, error) {
	f, err := s.load()
	if err != nil {
		return Context{}, err
	}
	if i, ok := f.find(f.current()); ok {
		return f.Contexts[i], nil
	}
	return defaultContext(), nil
}

// Get returns the context named name ("default" included).
func (s *Store) Get(name string) (Context, error) {
	if name == Default {
		return defaultContext(), nil
	}
	f, err := s.load()
	if err != nil {
		return Context{}, err
	}
	if i, ok := f.find(name); ok {
		return f.Contexts[i], nil
	}
	return Context{}, notFound(name)
}

func notFound(name string) error {
	return &Error{Kind: ErrNotFound, Msg: fmt.Sprintf("no context named %q", name),
		Hint: "see `envd context ls`"}
}

// current is the current context's name; a name that no longer exists (the
// file was edited by hand) falls back to default.
func (f *file) current() string {
	if _, ok := f.find(f.Current); ok {
		return f.Current
	}
	return Default
}

func (f *file) find(name string) (int, bool) {
	for i, c := range f.Contexts {
		if c.Name == name {
			return i, true
		}
	}
	return -1, false
}

func (s *Store) load() (*file, error) {
	f := &file{}
	b, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, f); err != nil {
		return nil, &Error{Kind: ErrInvalid, Msg: fmt.Sprintf("%s is not valid: %v", s.path, err),
			Hint: "fix it, or remove it to start again with only the default context"}
	}
	return f, nil
}

func (s *Store) save(f *file) error {
	if f.Contexts == nil {
		f.Contexts = []Context{}
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	// The config dir also holds envd's private ssh key: the owner's only.
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return err
	}
	return atomicfile.Write(s.path, append(b, '\n'), 0o600)
}
