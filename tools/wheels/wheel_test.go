package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestPEP440(t *testing.T) {
	for in, want := range map[string]string{
		"v0.3.0":                  "0.3.0",
		"0.3.0":                   "0.3.0",
		"v0.3.0-dirty":            "0.3.0+dirty",
		"v0.3.0-5-g1a2b3c4":       "0.3.0.dev5+g1a2b3c4",
		"v0.3.0-5-g1a2b3c4-dirty": "0.3.0.dev5+g1a2b3c4.dirty",
		"v1.0.0-rc.1":             "1.0.0rc1",
		"v1.0.0-beta2-3-gabcdef0": "1.0.0b2.dev3+gabcdef0",
		"v1.02.0":                 "1.2.0",
		"1a6da0b":                 "0.0.0+g1a6da0b",
		"1a6da0b-dirty":           "0.0.0+g1a6da0b.dirty",
		"devel":                   "0.0.0+devel",
		"1234567":                 "0.0.0+g1234567",
		"12a3456-dirty":           "0.0.0+g12a3456.dirty",
		"v2024":                   "2024",
		" v2.1 \n":                "2.1",
	} {
		got, err := pep440(in)
		if err != nil || got != want {
			t.Errorf("pep440(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "v1.0/x", "1.0 beta", "-x"} {
		if got, err := pep440(bad); err == nil {
			t.Errorf("pep440(%q) = %q, want an error", bad, got)
		}
	}
}

func TestWheelNames(t *testing.T) {
	if got, want := wheelName("0.3.0", "amd64"), "envd-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"; got != want {
		t.Errorf("amd64 wheel: %s, want %s", got, want)
	}
	if got, want := wheelName("0.3.0", "arm64"), "envd-0.3.0-py3-none-manylinux_2_17_aarch64.manylinux2014_aarch64.whl"; got != want {
		t.Errorf("arm64 wheel: %s, want %s", got, want)
	}
}

func fakeBinaries() map[string][]byte {
	bins := map[string][]byte{}
	for _, b := range binaries {
		bins[b] = []byte("#!/bin/sh\necho " + b + " \"$@\"\n")
	}
	return bins
}

func makeWheel(t *testing.T, dir, version, arch string) string {
	t.Helper()
	entries, err := wheelEntries(version, arch, fakeBinaries())
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, wheelName(version, arch))
	if err := writeFile(p, func(f *os.File) error { return writeZip(f, entries) }); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestWheelLayout: the wheel's entries, modes, WHEEL tags, METADATA, and a RECORD whose hashes and sizes match.
func TestWheelLayout(t *testing.T) {
	p := makeWheel(t, t.TempDir(), "0.3.0.dev5+g1a2b3c4", "arm64")
	zr, err := zip.OpenReader(p)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	files := map[string][]byte{}
	var names []string
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc) // checks the CRC too
		rc.Close()
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		files[f.Name] = data
		names = append(names, f.Name)
		want := os.FileMode(0o644)
		if strings.Contains(f.Name, ".data/scripts/") {
			want = 0o755
		}
		if f.Mode() != want || f.ExternalAttrs>>16 != uint32(0o100000|want) {
			t.Errorf("%s: mode %v (external attributes %#o), want %v", f.Name, f.Mode(), f.ExternalAttrs>>16, want)
		}
		if f.Modified.Year() != 1980 || f.Method != zip.Deflate {
			t.Errorf("%s: time %v, method %d", f.Name, f.Modified, f.Method)
		}
	}
	di, data := "envd-0.3.0.dev5+g1a2b3c4.dist-info/", "envd-0.3.0.dev5+g1a2b3c4.data/scripts/"
	want := []string{data + "envd", data + "envd-agent",
		di + "METADATA", di + "WHEEL", di + "RECORD"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("entries %q, want %q", names, want)
	}
	if got := string(files[di+"WHEEL"]); got != "Wheel-Version: 1.0\nGenerator: envd tools/wheels\nRoot-Is-Purelib: false\n"+
		"Tag: py3-none-manylinux_2_17_aarch64\nTag: py3-none-manylinux2014_aarch64\n" {
		t.Errorf("WHEEL:\n%s", got)
	}
	meta := string(files[di+"METADATA"])
	for _, line := range []string{"Metadata-Version: 2.1\n", "Name: envd\n", "Version: 0.3.0.dev5+g1a2b3c4\n", "Summary: ", "Requires-Python: >=3.7\n"} {
		if !strings.Contains(meta, line) {
			t.Errorf("METADATA lacks %q:\n%s", line, meta)
		}
	}
	rows, err := csv.NewReader(bytes.NewReader(files[di+"RECORD"])).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(files) {
		t.Errorf("RECORD has %d rows for %d files", len(rows), len(files))
	}
	for _, row := range rows {
		if row[0] == di+"RECORD" {
			if row[1] != "" || row[2] != "" {
				t.Errorf("RECORD's own row: %q", row)
			}
			continue
		}
		sum := sha256.Sum256(files[row[0]])
		if row[1] != "sha256="+base64.RawURLEncoding.EncodeToString(sum[:]) || row[2] != fmt.Sprint(len(files[row[0]])) {
			t.Errorf("RECORD row %q does not match the file", row)
		}
	}
}

// TestReproducible: the same inputs give the same bytes.
func TestReproducible(t *testing.T) {
	a, b := makeWheel(t, t.TempDir(), "1.0", "amd64"), makeWheel(t, t.TempDir(), "1.0", "amd64")
	x, _ := os.ReadFile(a)
	y, _ := os.ReadFile(b)
	if !bytes.Equal(x, y) {
		t.Error("two wheels of the same binaries differ")
	}
	var s1, s2 bytes.Buffer
	writeTarGz(&s1, sdistEntries("1.0"))
	writeTarGz(&s2, sdistEntries("1.0"))
	if !bytes.Equal(s1.Bytes(), s2.Bytes()) {
		t.Error("two sdists differ")
	}
}

func TestSdistLayout(t *testing.T) {
	var buf bytes.Buffer
	if err := writeTarGz(&buf, sdistEntries("1.0")); err != nil {
		t.Fatal(err)
	}
	gz, err := gzip.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
	if got := strings.Join(names, " "); got != "envd-1.0/ envd-1.0/PKG-INFO envd-1.0/envd_no_build.py envd-1.0/pyproject.toml envd-1.0/setup.py" {
		t.Errorf("sdist entries: %s", got)
	}
}

// TestPipInstall: this machine's pip installs a wheel into a venv with the scripts executable in bin/, refuses
// the other architecture's, and fails on the sdist with its message.
func TestPipInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("runs pip")
	}
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3")
	}
	dir := t.TempDir()
	version := "0.3.0.dev5+g1a2b3c4"
	amd64, arm64 := makeWheel(t, dir, version, "amd64"), makeWheel(t, dir, version, "arm64")
	sdist := filepath.Join(dir, sdistName(version))
	if err := writeFile(sdist, func(f *os.File) error { return writeTarGz(f, sdistEntries(version)) }); err != nil {
		t.Fatal(err)
	}
	venv := filepath.Join(dir, "venv")
	if out, err := exec.Command(python, "-m", "venv", "--without-pip", venv).CombinedOutput(); err != nil {
		t.Skipf("python3 -m venv: %v\n%s", err, out)
	}
	pip := func(args ...string) (string, error) {
		cmd := exec.Command(python, append([]string{"-m", "pip", "--python", filepath.Join(venv, "bin", "python")}, args...)...)
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "PIP_") && !strings.HasPrefix(kv, "PYTHON") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		cmd.Env = append(cmd.Env, "PIP_CONFIG_FILE="+os.DevNull, "PIP_DISABLE_PIP_VERSION_CHECK=1")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := pip("--version"); err != nil {
		t.Skipf("the host's pip cannot install into a venv (--python needs pip 22.3): %v\n%s", err, out)
	}
	host, other := amd64, arm64
	if out, _ := exec.Command("uname", "-m").Output(); strings.TrimSpace(string(out)) == "aarch64" {
		host, other = arm64, amd64
	}
	if out, err := pip("install", "--no-index", other); err == nil || !strings.Contains(out, "is not a supported wheel on this platform") {
		t.Errorf("pip install of the other architecture's wheel: %v\n%s", err, out)
	}
	if out, err := pip("install", "--no-index", host); err != nil {
		t.Fatalf("pip install %s: %v\n%s", filepath.Base(host), err, out)
	}
	for _, b := range binaries {
		p := filepath.Join(venv, "bin", b)
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: %v %v, want mode 0755", p, fi, err)
			continue
		}
		if out, err := exec.Command(p, "x").Output(); err != nil || string(out) != b+" x\n" {
			t.Errorf("running %s: %q %v", p, out, err)
		}
	}
	if out, err := pip("show", "envd"); err != nil || !strings.Contains(out, "Version: "+version) {
		t.Errorf("pip show envd: %v\n%s", err, out)
	}
	out, err := pip("install", "--no-index", sdist)
	if err == nil || !strings.Contains(out, "envd is a Go program") || !strings.Contains(out, wheelName(version, "amd64")) {
		t.Errorf("pip install of the sdist: %v\n%s", err, out)
	}
	if out, err := pip("uninstall", "-y", "envd"); err != nil {
		t.Errorf("pip uninstall: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(venv, "bin", "envd")); !os.IsNotExist(err) {
		t.Errorf("bin/envd after pip uninstall: %v", err)
	}
}
