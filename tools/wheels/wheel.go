package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/csv"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"
)

// platformTags are the wheels' platform tags for each GOARCH. The binaries are static (CGO_ENABLED=0): they need
// no glibc at all, so the lowest manylinux a platform has would do. manylinux_2_17 is that for aarch64 (manylinux2014
// was the first with aarch64), and x86_64 gets the same for symmetry. Each wheel carries two tags for the same
// thing: manylinux_2_17_* (PEP 600), which pip 20.3 and later understand, and its alias manylinux2014_* (PEP 599),
// for pip 19.3 to 20.2. pip accepts manylinux_2_17 on any glibc from 2.17 on: Debian 12's is 2.36, and its pip
// 23.0 lists manylinux_2_36 down to manylinux_2_17 (and manylinux2014) among its supported tags.
var platformTags = map[string][]string{
	"amd64": {"manylinux_2_17_x86_64", "manylinux2014_x86_64"},
	"arm64": {"manylinux_2_17_aarch64", "manylinux2014_aarch64"},
}

// binaries are the executables a wheel carries, installed into the venv's bin/, side by side: envd is its own
// buildkitd, buildctl and envd-handover (internal/multicall), and puts the small envd-agent beside it into
// development images rather than itself.
var binaries = []string{"envd", "envd-agent"}

// zipTime is every entry's time, so that the same binaries give the same wheel bytes: 1980-01-01 00:00, the
// earliest a zip can say (and what Python's zipfile needs at least).
var zipTime = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

const summary = "envd builds machine-learning development environments (container images) from build.envd with BuildKit"

// wheelName is the file name of the wheel for goarch.
func wheelName(version, goarch string) string {
	return fmt.Sprintf("envd-%s-py3-none-%s.whl", version, strings.Join(platformTags[goarch], "."))
}

func sdistName(version string) string { return "envd-" + version + ".tar.gz" }

// metadata is METADATA in the wheels and PKG-INFO in the sdist (core metadata 2.1). The repository names no
// license, so there is no License field.
func metadata(version string) string {
	return "Metadata-Version: 2.1\n" +
		"Name: envd\n" +
		"Version: " + version + "\n" +
		"Summary: " + summary + "\n" +
		"Requires-Python: >=3.7\n" +
		"Description-Content-Type: text/markdown\n" +
		"\n" +
		"# envd\n\n" +
		"envd turns a short Python-dialect file, `build.envd`, into a container image with your apt and Python\n" +
		"packages, built by BuildKit and loaded into your local Docker.\n\n" +
		"This wheel carries envd's static Linux binaries and installs them into the environment's `bin/`: `envd`\n" +
		"(also its own managed builder: BuildKit's daemon is built into it), `envd-agent` (which envd puts into\n" +
		"development images). There is no Python code in it. The source distribution cannot build envd (it is a Go program): install a wheel, or build from\n" +
		"the source with `make build`.\n"
}

// entry is one file of an archive.
type entry struct {
	name string
	data []byte
	mode fs.FileMode
}

// wheelEntries lists a wheel's files in archive order: the binaries (named as in bins) in
// envd-VERSION.data/scripts/, which pip installs into the venv's bin/ with their executable bit, then the
// .dist-info (last, as the wheel spec recommends), RECORD at its end.
func wheelEntries(version, goarch string, bins map[string][]byte) ([]entry, error) {
	tags := platformTags[goarch]
	if tags == nil {
		return nil, fmt.Errorf("no wheel platform tags for GOARCH %q", goarch)
	}
	dataDir, distInfo := "envd-"+version+".data", "envd-"+version+".dist-info"
	var names []string
	for n := range bins {
		names = append(names, n)
	}
	sort.Strings(names)
	var entries []entry
	for _, n := range names {
		entries = append(entries, entry{dataDir + "/scripts/" + n, bins[n], 0o755})
	}
	var wheel strings.Builder
	wheel.WriteString("Wheel-Version: 1.0\nGenerator: envd tools/wheels\nRoot-Is-Purelib: false\n")
	for _, t := range tags {
		fmt.Fprintf(&wheel, "Tag: py3-none-%s\n", t)
	}
	entries = append(entries,
		entry{distInfo + "/METADATA", []byte(metadata(version)), 0o644},
		entry{distInfo + "/WHEEL", []byte(wheel.String()), 0o644},
	)
	// RECORD: every file with its sha256 (urlsafe base64, no padding) and size; RECORD itself with neither.
	var record bytes.Buffer
	w := csv.NewWriter(&record)
	for _, e := range entries {
		sum := sha256.Sum256(e.data)
		w.Write([]string{e.name, "sha256=" + base64.RawURLEncoding.EncodeToString(sum[:]), fmt.Sprint(len(e.data))})
	}
	w.Write([]string{distInfo + "/RECORD", "", ""})
	w.Flush()
	if err := w.Error(); err != nil {
		return nil, err
	}
	return append(entries, entry{distInfo + "/RECORD", record.Bytes(), 0o644}), nil
}

// writeZip writes entries, in their order, deflated (in parallel: the binaries are most of the time) with fixed
// times and each file's mode in the external attributes, which pip reads to keep scripts executable.
func writeZip(out io.Writer, entries []entry) error {
	compressed := make([][]byte, len(entries))
	errs := make([]error, len(entries))
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.NumCPU())
	for i, e := range entries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			var b bytes.Buffer
			fw, err := flate.NewWriter(&b, flate.BestCompression)
			if err == nil {
				if _, err = fw.Write(e.data); err == nil {
					err = fw.Close()
				}
			}
			compressed[i], errs[i] = b.Bytes(), err
		}()
	}
	wg.Wait()
	zw := zip.NewWriter(out)
	for i, e := range entries {
		if errs[i] != nil {
			return fmt.Errorf("deflate %s: %w", e.name, errs[i])
		}
		// CreateRaw writes the header as given: sizes and CRC up front (no data descriptor), the DOS time
		// from zipTime and no extra fields, so nothing varies between runs.
		h := &zip.FileHeader{
			Name:               e.name,
			Method:             zip.Deflate,
			CRC32:              crc32.ChecksumIEEE(e.data),
			CompressedSize64:   uint64(len(compressed[i])),
			UncompressedSize64: uint64(len(e.data)),
			ReaderVersion:      20,
			ModifiedDate:       uint16((zipTime.Year()-1980)<<9 | int(zipTime.Month())<<5 | zipTime.Day()),
			ModifiedTime:       uint16(zipTime.Hour()<<11 | zipTime.Minute()<<5 | zipTime.Second()/2),
		}
		h.SetMode(e.mode)      // Unix mode << 16 in ExternalAttrs, made by "Unix"
		h.CreatorVersion |= 20 // zip 2.0, as archive/zip's CreateHeader says
		w, err := zw.CreateRaw(h)
		if err != nil {
			return err
		}
		if _, err := w.Write(compressed[i]); err != nil {
			return err
		}
	}
	return zw.Close()
}

// The sdist: PKG-INFO, a PEP 517 backend of its own (no build requirements, so pip needs no index to run it)
// whose every hook fails with noBuildMessage, and a setup.py saying the same for tools that run it directly.
const noBuildMessage = `envd is a Go program: this source distribution has no Python in it and cannot build envd.
Install the wheel for your platform instead (Linux x86_64 or aarch64):
    pip install envd-%[1]s-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl
    pip install envd-%[1]s-py3-none-manylinux_2_17_aarch64.manylinux2014_aarch64.whl
(make wheels in a checkout of envd's source makes both, into dist/), or build envd from its source:
make build (bin/envd, with envd-agent beside it), or CGO_ENABLED=0 go install ./cmd/envd in that checkout
(envd alone is all it needs: its own builder and agent).`

const backendModule = "envd_no_build"

func sdistEntries(version string) []entry {
	dir := "envd-" + version + "/"
	msg := fmt.Sprintf(noBuildMessage, version)
	pyMsg := "MESSAGE = " + pyString(msg) + "\n"
	backend := `"""The PEP 517 backend of envd's source distribution: it builds nothing.

envd is a Go program, shipped as wheels of static binaries. Every hook fails with MESSAGE.
"""
import sys

` + pyMsg + `

def _fail(*args, **kwargs):
    sys.stderr.write("\n" + MESSAGE + "\n\n")
    raise SystemExit("envd cannot be built from this source distribution: install a wheel (see above)")


get_requires_for_build_wheel = _fail
prepare_metadata_for_build_wheel = _fail
build_wheel = _fail
get_requires_for_build_editable = _fail
prepare_metadata_for_build_editable = _fail
build_editable = _fail
get_requires_for_build_sdist = _fail
build_sdist = _fail
`
	pyproject := `# envd is a Go program: this source distribution builds nothing (see envd_no_build.py).
[build-system]
requires = []
build-backend = "` + backendModule + `"
backend-path = ["."]
`
	setup := `# envd is a Go program: this source distribution builds nothing.
import sys

` + pyMsg + `
sys.stderr.write("\n" + MESSAGE + "\n\n")
sys.exit(1)
`
	return []entry{
		{dir, nil, fs.ModeDir | 0o755},
		{dir + "PKG-INFO", []byte(metadata(version)), 0o644},
		{dir + backendModule + ".py", []byte(backend), 0o644},
		{dir + "pyproject.toml", []byte(pyproject), 0o644},
		{dir + "setup.py", []byte(setup), 0o644},
	}
}

// pyString is s as a Python string literal.
func pyString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

// writeTarGz writes entries as a gzipped tar with fixed times and owners and no gzip name or time.
func writeTarGz(out io.Writer, entries []entry) error {
	gz, err := gzip.NewWriterLevel(out, gzip.BestCompression)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: int64(e.mode.Perm()), Size: int64(len(e.data)), ModTime: zipTime,
			Typeflag: tar.TypeReg, Format: tar.FormatUSTAR}
		if e.mode.IsDir() {
			h.Typeflag = tar.TypeDir
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := tw.Write(e.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}
