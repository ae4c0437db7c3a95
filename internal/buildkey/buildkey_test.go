package buildkey

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"envd.dev/envd/internal/ir"
)

func TestKeyFollowsEveryInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("build.envd", "def build(): pass")
	write("requirements.txt", "six\n")
	write("data/a.txt", "a")
	env := &ir.Environment{
		Base:         ir.Base{Image: "docker.io/library/debian:bookworm"},
		Requirements: []ir.File{{Path: "requirements.txt"}},
		Steps:        []ir.Step{{Copy: &ir.CopyStep{Source: "data", Target: "/data"}}},
	}
	in := Inputs{EnvdVersion: "v1", Env: env, Platform: "linux/amd64", BuildFiles: []string{filepath.Join(dir, "build.envd")}, ContextDir: dir}
	key := func() string {
		t.Helper()
		k, err := Compute(in)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	first := key()
	if key() != first {
		t.Fatal("key is not stable")
	}
	changes := []struct {
		name   string
		change func()
	}{
		{"requirements content", func() { write("requirements.txt", "six\nnumpy\n") }},
		{"file in a copied dir", func() { write("data/a.txt", "b") }},
		{"new file in a copied dir", func() { write("data/b.txt", "b") }},
		{"build file", func() { write("build.envd", "def build():\n  pass") }},
		{"environment", func() { env.PythonPackages = []ir.Package{{Name: "six"}} }},
		{"envd version", func() { in.EnvdVersion = "v2" }},
		{"platform", func() { in.Platform = "linux/arm64" }},
		{"extra", func() { in.Extra = []string{"name=x:1"} }},
	}
	prev := first
	for _, c := range changes {
		c.change()
		if k := key(); k == prev {
			t.Errorf("changing the %s did not change the key", c.name)
		} else {
			prev = k
		}
	}
	// A file the build does not read leaves the key alone.
	write("notes.txt", "unrelated")
	if key() != prev {
		t.Error("an unrelated file changed the key")
	}
}

func TestMountHostIsUncacheable(t *testing.T) {
	env := &ir.Environment{Steps: []ir.Step{{Run: &ir.RunStep{Commands: []string{"ls"}, MountHost: true}}}}
	if _, err := Compute(Inputs{Env: env, ContextDir: t.TempDir()}); !errors.Is(err, ErrUncacheable) {
		t.Fatalf("err = %v, want ErrUncacheable", err)
	}
}

func TestMissingFileIsAnError(t *testing.T) {
	env := &ir.Environment{Requirements: []ir.File{{Path: "nope.txt"}}}
	if _, err := Compute(Inputs{Env: env, ContextDir: t.TempDir()}); err == nil {
		t.Fatal("want an error for a missing file")
	}
}

// io.copy(image=...) reads no build-directory file: its source, absolute
// in the image, is not looked for here, and the image reference keys it.
func TestCopyFromImage(t *testing.T) {
	dir := t.TempDir()
	step := &ir.CopyStep{Source: "/bin/micromamba", Target: "/usr/local/bin/micromamba", Image: "docker.io/mambaorg/micromamba:1.0.0"}
	env := &ir.Environment{Steps: []ir.Step{{Copy: step}}}
	in := Inputs{EnvdVersion: "v1", Env: env, ContextDir: dir}
	first, err := Compute(in)
	if err != nil {
		t.Fatalf("a copy from an image read the build directory: %v", err)
	}
	for _, change := range []func(){
		func() { step.Image = "docker.io/mambaorg/micromamba:1.5.0" },
		func() { step.Image = "docker.io/mambaorg/micromamba@sha256:" + strings.Repeat("ab", 32) },
		func() { step.Source = "/usr/bin/micromamba" },
	} {
		change()
		k, err := Compute(in)
		if err != nil {
			t.Fatal(err)
		}
		if k == first {
			t.Errorf("%+v: the key did not change", *step)
		}
		first = k
	}
	// The same path in the build directory is read, and here is missing.
	step.Image = ""
	step.Source = "bin/micromamba"
	if _, err := Compute(in); err == nil {
		t.Error("a copy from the build directory of a missing file has a key")
	}
}
