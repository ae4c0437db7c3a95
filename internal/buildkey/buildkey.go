// Package buildkey fingerprints a build: the environment plus the content of
// every file it reads. Equal keys mean an identical image, so the build can
// be skipped without asking BuildKit.
package buildkey

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"envd.dev/envd/internal/ir"
)

// Inputs lists what a build depends on.
type Inputs struct {
	EnvdVersion string
	Env         *ir.Environment
	// Platform is the image's, e.g. linux/arm64: the same build file makes
	// another image for another platform.
	Platform string
	// BuildFiles are the build.envd file and any modules it loaded (any path).
	BuildFiles []string
	// ContextDir is the build directory the environment's paths are relative to.
	ContextDir string
	// Extra is anything else that changes the image, e.g. the image name.
	Extra []string
}

// ErrUncacheable means the build reads files the key cannot cover
// (run(mount_host=True) sees the whole directory).
var ErrUncacheable = fmt.Errorf("build reads the whole build directory")

// Compute returns the key, or ErrUncacheable.
func Compute(in Inputs) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "envd %s\n%s\nplatform %q\n", in.EnvdVersion, in.Env.Digest(), in.Platform)
	for _, x := range in.Extra {
		fmt.Fprintf(h, "extra %q\n", x)
	}
	for _, f := range in.BuildFiles {
		if err := hashPath(h, f, f); err != nil {
			return "", err
		}
	}
	paths, err := contextPaths(in.Env)
	if err != nil {
		return "", err
	}
	for _, p := range paths {
		if err := hashPath(h, p, filepath.Join(in.ContextDir, p)); err != nil {
			return "", err
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// contextPaths are the build-directory paths the environment reads.
func contextPaths(env *ir.Environment) ([]string, error) {
	var paths []string
	for _, f := range env.Requirements {
		paths = append(paths, f.Path)
	}
	for _, f := range env.LocalWheels {
		paths = append(paths, f.Path)
	}
	for _, x := range env.VSCodeExtensions {
		if ir.IsLocalVSIX(x.Name) {
			paths = append(paths, x.Name)
		}
	}
	for _, s := range env.Steps {
		// A copy from an image reads no build-directory file: its reference
		// is in the environment's digest.
		if s.Copy != nil && s.Copy.Image == "" {
			paths = append(paths, s.Copy.Source)
		}
		if s.Run != nil && s.Run.MountHost {
			return nil, ErrUncacheable
		}
	}
	sort.Strings(paths)
	return paths, nil
}

// hashPath adds a file, or every file below a directory, with names and modes.
func hashPath(h io.Writer, name, path string) error {
	return filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(path, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "path %q %q %v\n", name, rel, info.Mode())
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "link %q\n", target)
		case info.Mode().IsRegular():
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			if _, err := io.Copy(h, f); err != nil {
				return err
			}
		}
		return nil
	})
}
