// Package pyindex makes real, pip-installable wheels and serves them as a PEP 503 "simple" package index,
// counting every file it serves. Tests and benchmarks use it to install Python packages without the internet
// and to prove that a rebuild downloaded nothing.
package pyindex

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// WheelOptions shape a generated wheel.
type WheelOptions struct {
	// Requires become Requires-Dist lines, e.g. "beta" or "beta>=1.0"; pip installs them as dependencies.
	Requires []string
	// PadBytes adds a data file of this many incompressible bytes, so the wheel has a realistic size.
	PadBytes int
}

var (
	// PEP 508 distribution names.
	nameRE = regexp.MustCompile(`(?i)^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$`)
	// A loose PEP 440 check; '-' and '_' are excluded because they would break the wheel file name.
	versionRE = regexp.MustCompile(`^[0-9A-Za-z.+!]+$`)
	// Runs of separators, which PEP 503 treats as one.
	separatorsRE = regexp.MustCompile(`[-_.]+`)
)

// zipTime is fixed so that the same inputs always give the same bytes (and the same sha256).
var zipTime = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// NormalizeName returns a project name as PEP 503 normalizes it: lower case, runs of "-", "_" and "." as one "-".
func NormalizeName(name string) string {
	return separatorsRE.ReplaceAllString(strings.ToLower(name), "-")
}

// wheelDistName is the distribution part of a wheel file name: normalized, with "_" as separator.
func wheelDistName(name string) string {
	return strings.ReplaceAll(NormalizeName(name), "-", "_")
}

// WheelFileName returns the file name MakeWheel writes for name and version.
func WheelFileName(name, version string) string {
	return fmt.Sprintf("%s-%s-py3-none-any.whl", wheelDistName(name), version)
}

// ImportName returns the Python package a generated wheel installs: "My-Pkg" is imported as my_pkg.
func ImportName(name string) string {
	return wheelDistName(name)
}

// MakeWheel writes a pure-Python wheel for name and version into dir and returns its path. The wheel installs
// package ImportName(name), whose __version__ is version. The same arguments always produce the same bytes.
func MakeWheel(dir, name, version string, opts WheelOptions) (string, error) {
	if !nameRE.MatchString(name) {
		return "", fmt.Errorf("pyindex: invalid distribution name %q: use letters, digits and -_. inside", name)
	}
	if !versionRE.MatchString(version) {
		return "", fmt.Errorf("pyindex: invalid version %q for %s: use a PEP 440 version such as 1.0.2", version, name)
	}
	if opts.PadBytes < 0 {
		return "", fmt.Errorf("pyindex: negative PadBytes %d for %s", opts.PadBytes, name)
	}

	pkg := ImportName(name)
	distInfo := fmt.Sprintf("%s-%s.dist-info", wheelDistName(name), version)

	var metadata strings.Builder
	fmt.Fprintf(&metadata, "Metadata-Version: 2.1\nName: %s\nVersion: %s\nSummary: generated test package\n", name, version)
	for _, r := range opts.Requires {
		fmt.Fprintf(&metadata, "Requires-Dist: %s\n", r)
	}

	type entry struct {
		path  string
		data  []byte
		store bool // incompressible: deflating it would only cost time
	}
	entries := []entry{
		{path: pkg + "/__init__.py", data: fmt.Appendf(nil, "__version__ = %q\n", version)},
	}
	if opts.PadBytes > 0 {
		entries = append(entries, entry{path: pkg + "/_pad.bin", data: padding(name, version, opts.PadBytes), store: true})
	}
	entries = append(entries,
		entry{path: distInfo + "/METADATA", data: []byte(metadata.String())},
		entry{path: distInfo + "/WHEEL", data: []byte("Wheel-Version: 1.0\nGenerator: envd-pyindex\nRoot-Is-Purelib: true\nTag: py3-none-any\n")},
	)

	// RECORD lists every other file with its hash and size; its own line has neither.
	var record strings.Builder
	for _, e := range entries {
		sum := sha256.Sum256(e.data)
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", e.path, base64.RawURLEncoding.EncodeToString(sum[:]), len(e.data))
	}
	fmt.Fprintf(&record, "%s/RECORD,,\n", distInfo)
	entries = append(entries, entry{path: distInfo + "/RECORD", data: []byte(record.String())})

	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		var w io.Writer
		var err error
		if e.store {
			// Stored with its sizes up front, no data descriptor: streaming unzippers (uv) need to know
			// where a stored entry ends.
			h := &zip.FileHeader{Name: e.path, Method: zip.Store, Modified: zipTime,
				CRC32: crc32.ChecksumIEEE(e.data), CompressedSize64: uint64(len(e.data)), UncompressedSize64: uint64(len(e.data))}
			w, err = zw.CreateRaw(h)
		} else {
			w, err = zw.CreateHeader(&zip.FileHeader{Name: e.path, Method: zip.Deflate, Modified: zipTime})
		}
		if err != nil {
			return "", fmt.Errorf("pyindex: writing %s: %w", e.path, err)
		}
		if _, err := w.Write(e.data); err != nil {
			return "", fmt.Errorf("pyindex: writing %s: %w", e.path, err)
		}
	}
	if err := zw.Close(); err != nil {
		return "", fmt.Errorf("pyindex: writing wheel %s: %w", name, err)
	}

	path := filepath.Join(dir, WheelFileName(name, version))
	if err := writeFileAtomic(path, buf.Bytes()); err != nil {
		return "", fmt.Errorf("pyindex: %w", err)
	}
	return path, nil
}

// padding returns n pseudo-random bytes seeded by name and version: incompressible, yet reproducible.
func padding(name, version string, n int) []byte {
	seed := sha256.Sum256([]byte(name + "\x00" + version))
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(seed).Read(b) // never fails
	return b
}

// writeFileAtomic writes through a temporary name, so a server scanning dir never sees a half-written wheel.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".pyindex-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // fails harmlessly once renamed
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
