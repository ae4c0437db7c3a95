// Command wheels builds envd's Python wheels, one for Linux x86_64 and one for aarch64, each carrying envd's static
// binaries (envd, which is also its own buildkitd, and envd-agent), and a source distribution that refuses to
// build. `make wheels` runs it:
//
//	go run ./tools/wheels -version "$(ENVD_VERSION)" -out dist
//
// The binaries are cross-compiled (CGO_ENABLED=0, GOOS=linux, GOARCH=amd64 and arm64) and never run. The same
// source, version and Go toolchain give the same wheel bytes: -trimpath, no VCS stamping (the version carries the
// commit), stripped symbols, fixed GOAMD64/GOARM64, and archives with fixed times and sorted entries.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "wheels:", err)
		os.Exit(1)
	}
}

type options struct {
	version  string // envd's version as the Makefile has it: git describe, or set by hand
	buildkit string // BuildKit's version to stamp: the one go.mod pins
	out      string
	goBin    string
	arches   []string
}

func run(args []string) error {
	fl := flag.NewFlagSet("wheels", flag.ContinueOnError)
	var o options
	var arches string
	fl.StringVar(&o.version, "version", "", "envd's version, as git describe --tags --always --dirty prints it (the default)")
	fl.StringVar(&o.buildkit, "buildkit-version", "", "BuildKit's version to stamp into envd, its own buildkitd (default: the one go.mod pins)")
	fl.StringVar(&o.out, "out", "dist", "directory to write the wheels and the sdist into")
	fl.StringVar(&o.goBin, "go", envOr("GO", "go"), "the go command")
	fl.StringVar(&arches, "arch", "amd64,arm64", "GOARCHes to build wheels for")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fl.Args())
	}
	o.arches = strings.Split(arches, ",")

	// Build from the module's root, wherever this runs.
	gomod, err := output(exec.Command(o.goBin, "env", "GOMOD"))
	if err != nil || gomod == "" || gomod == os.DevNull {
		return fmt.Errorf("not in envd's module (go env GOMOD: %q %v)", gomod, err)
	}
	root := filepath.Dir(gomod)
	if o.version == "" {
		cmd := exec.Command("git", "describe", "--tags", "--always", "--dirty")
		cmd.Dir = root
		if o.version, err = output(cmd); err != nil {
			o.version = "devel"
		}
	}
	version, err := pep440(o.version)
	if err != nil {
		return err
	}
	if o.buildkit == "" {
		cmd := exec.Command(o.goBin, "list", "-m", "-f", "{{.Version}}", "github.com/moby/buildkit")
		cmd.Dir = root
		if o.buildkit, err = output(cmd); err != nil {
			return fmt.Errorf("BuildKit's version: %w", err)
		}
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "envd-wheels-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	for _, arch := range o.arches {
		if platformTags[arch] == nil {
			return fmt.Errorf("no wheel for GOARCH %q: amd64 and arm64 only", arch)
		}
		start := time.Now()
		bins, err := buildBinaries(o, root, filepath.Join(tmp, arch), arch, version)
		if err != nil {
			return err
		}
		built := time.Since(start)
		entries, err := wheelEntries(version, arch, bins)
		if err != nil {
			return err
		}
		name := filepath.Join(o.out, wheelName(version, arch))
		if err := writeFile(name, func(f *os.File) error { return writeZip(f, entries) }); err != nil {
			return err
		}
		fi, _ := os.Stat(name)
		fmt.Printf("%s  %.1f MB  (built in %s, packed in %s)\n", name, float64(fi.Size())/1e6,
			built.Round(time.Second), (time.Since(start) - built).Round(100*time.Millisecond))
	}
	name := filepath.Join(o.out, sdistName(version))
	if err := writeFile(name, func(f *os.File) error { return writeTarGz(f, sdistEntries(version)) }); err != nil {
		return err
	}
	fmt.Println(name)
	return nil
}

// buildBinaries builds the wheel's binaries for linux/arch into dir and returns their contents by name.
func buildBinaries(o options, root, dir, arch, version string) (map[string][]byte, error) {
	envdX := "-X envd.dev/envd/internal/cli.Version=" + version
	bkX := "-X github.com/moby/buildkit/version.Version=" + o.buildkit
	pkgs := map[string]struct{ pkg, x string }{
		"envd":       {"./cmd/envd", envdX + " " + bkX}, // envd is its own buildkitd, with BuildKit's version
		"envd-agent": {"./cmd/envd-agent", ""},
	}
	env := append(os.Environ(),
		"CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch,
		// The baseline of each architecture, whatever the caller's environment asks for: the wheels run on any
		// x86_64 or aarch64 machine.
		"GOAMD64=v1", "GOARM64=v8.0",
		"GOFLAGS=", // the flags below are the whole story
	)
	bins := map[string][]byte{}
	for _, name := range binaries {
		p := pkgs[name]
		out := filepath.Join(dir, name)
		// -s -w: no symbol table or DWARF (a third smaller; stack traces keep their function names and lines).
		cmd := exec.Command(o.goBin, "build", "-trimpath", "-buildvcs=false",
			"-ldflags", strings.TrimSpace("-s -w "+p.x), "-o", out, p.pkg)
		cmd.Dir, cmd.Env = root, env
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("GOARCH=%s go build %s: %v\n%s", arch, p.pkg, err, b)
		}
		data, err := os.ReadFile(out)
		if err != nil {
			return nil, err
		}
		bins[name] = data
	}
	return bins, nil
}

// writeFile writes name through a temporary file beside it, so that a failed run leaves no half-written wheel.
func writeFile(name string, write func(*os.File) error) error {
	f, err := os.CreateTemp(filepath.Dir(name), ".tmp-"+filepath.Base(name))
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), name)
}

func output(cmd *exec.Cmd) (string, error) {
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s: %v %s", strings.Join(cmd.Args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(b)), nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
