package e2e

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// wheelBinaries are what each wheel carries in envd-VERSION.data/scripts/.
var wheelBinaries = []string{"envd", "envd-agent"}

// TestWheel: `make wheels` makes a wheel per architecture whose binaries are static ELF files of that
// architecture; pip installs the x86_64 one into a fresh venv, and that envd, with nothing of the repository's on
// its PATH or in its environment, runs the quick start with itself as its own managed builder (buildkitd);
// the sdist refuses to install, saying why.
func TestWheel(t *testing.T) {
	requireE2E(t)
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dist := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	start := time.Now()
	mk := exec.CommandContext(ctx, "make", "-C", root, "wheels", "WHEELS_DIR="+dist)
	mk.Env = append(os.Environ(), goEnv...)
	if out, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("make wheels: %v\n%s", err, out)
	}
	t.Logf("make wheels took %s", time.Since(start).Round(time.Second))

	// One of each, named by the tags pip on Debian 12 takes.
	wheels := map[string]string{}
	var version string
	for _, arch := range []string{"x86_64", "aarch64"} {
		suffix := fmt.Sprintf("-py3-none-manylinux_2_17_%[1]s.manylinux2014_%[1]s.whl", arch)
		found, _ := filepath.Glob(filepath.Join(dist, "envd-*"+suffix))
		if len(found) != 1 {
			t.Fatalf("want one %s wheel in %s, found %q", arch, dist, found)
		}
		wheels[arch] = found[0]
		v := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(found[0]), "envd-"), suffix)
		if version != "" && v != version {
			t.Fatalf("the wheels have versions %s and %s", version, v)
		}
		version = v
	}
	// The version is this commit's: git describe's, made PEP 440 (0.0.0+gCOMMIT with no tag).
	commit, err := exec.Command("git", "-C", root, "rev-parse", "--short=7", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	if c := strings.TrimSpace(string(commit)); !strings.Contains(version, "+g"+c) && !isRelease(version) {
		t.Errorf("wheel version %q does not name commit %s", version, c)
	}
	checkWheelBinaries(t, wheels["x86_64"], elf.EM_X86_64)
	checkWheelBinaries(t, wheels["aarch64"], elf.EM_AARCH64)
	sdist := filepath.Join(dist, "envd-"+version+".tar.gz")
	if _, err := os.Stat(sdist); err != nil {
		t.Fatalf("no sdist: %v", err)
	}

	// pip installs the wheel from the file into a fresh venv.
	venv := filepath.Join(t.TempDir(), "venv")
	python := newVenv(t, venv)
	if out, err := pip(python, venv, "install", "--no-index", "--no-deps", wheels["x86_64"]); err != nil {
		t.Fatalf("pip install %s: %v\n%s", filepath.Base(wheels["x86_64"]), err, out)
	}
	bin := filepath.Join(venv, "bin")
	for _, b := range wheelBinaries {
		fi, err := os.Stat(filepath.Join(bin, b))
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o755 {
			t.Errorf("%s in the venv's bin/: %v %v, want an executable file (0755)", b, fi, err)
		}
	}

	// That envd alone: PATH without the repository's binaries, no ENVD_* variables (the harness sets
	// ENVD_BUILDKITD), its own HOME and XDG dirs so that it starts its own managed buildkitd.
	state, err := os.MkdirTemp("/tmp", "envd-e2e-wheel-") // short: the builder's socket is below it
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=" + pathWithout(bin, wheelBinaries)}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k != "PATH" && k != "HOME" && !strings.HasPrefix(k, "ENVD_") && !strings.HasPrefix(k, "XDG_") {
			env = append(env, kv)
		}
	}
	for _, d := range []string{"home", "config", "data", "cache"} {
		p := filepath.Join(state, d)
		if err := os.MkdirAll(p, 0o700); err != nil {
			t.Fatal(err)
		}
		if d == "home" {
			env = append(env, "HOME="+p)
		} else {
			env = append(env, "XDG_"+strings.ToUpper(d)+"_HOME="+p)
		}
	}
	venvEnvd := func(dir string, args ...string) result {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, filepath.Join(bin, "envd"), args...)
		cmd.Dir, cmd.Env = dir, env
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		begin := time.Now()
		err := cmd.Run()
		r := result{stdout: out.String(), stderr: errb.String(), elapsed: time.Since(begin)}
		if err != nil {
			r.code = -1
			if ee, ok := err.(*exec.ExitError); ok {
				r.code = ee.ExitCode()
			}
		}
		return r
	}
	t.Cleanup(func() {
		if r := venvEnvd(state, "bootstrap", "--stop"); r.code != 0 {
			t.Errorf("stopping the wheel's builder: %s", r)
		}
		if err := os.RemoveAll(state); err != nil {
			t.Logf("removing %s: %v", state, err)
		}
	})

	r := venvEnvd(state, "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "envd "+version+"\n") {
		t.Errorf("envd version from the wheel, want envd %s: %s", version, r)
	}

	// The quick start: a project with one package from the test index.
	srv := index(t, wheel{name: "wheelcheck", version: "1.0"})
	name := fmt.Sprintf("e2e-wheel-%d", os.Getpid())
	image := name + ":dev"
	removeImage(t, image)
	dir := project(t, name, map[string]string{"build.envd": fmt.Sprintf(`def build():
    base(os="debian12", language="python3")
    config.pip_index(url=%q, trust=True)
    install.python_packages(name=["wheelcheck"])
`, srv.URL())})
	if r := venvEnvd(dir, "build", "--progress", "plain", "--registry-mirror", mirror); r.code != 0 {
		t.Fatalf("envd build with the wheel's envd: %s", r)
	}
	// It started the wheel's envd as buildkitd, not the harness's or the repository's.
	pid, err := os.ReadFile(filepath.Join(state, "data", "envd", "buildkit", "buildkitd.pid"))
	if err != nil {
		t.Fatalf("the wheel's envd started no managed builder of its own: %v", err)
	}
	if exe, err := os.Readlink("/proc/" + strings.TrimSpace(string(pid)) + "/exe"); err != nil || exe != filepath.Join(bin, "envd") {
		t.Errorf("the managed builder runs %q (%v), want the wheel's %s", exe, err, filepath.Join(bin, "envd"))
	}
	if out, err := dockerCmd(t, "image", "inspect", "--format", "{{.Id}}", image); err != nil {
		t.Fatalf("%s is not in Docker: %v\n%s", image, err, out)
	}
	if out := runInImage(t, image, "python", "-c", "import wheelcheck; print(wheelcheck.__version__)"); strings.TrimSpace(out) != "1.0" {
		t.Errorf("import wheelcheck in %s printed %q", image, out)
	}
	// The image's agent is the wheel's envd-agent.
	agent, err := os.ReadFile(filepath.Join(bin, "envd-agent"))
	if err != nil {
		t.Fatal(err)
	}
	if out := runInImage(t, image, "sha256sum", "/opt/envd/bin/envd-agent"); !strings.HasPrefix(out, sha256hex(agent)) {
		t.Errorf("the image's /opt/envd/bin/envd-agent is not the wheel's: %q", out)
	}

	// The sdist cannot build envd, and says so.
	out, err := pip(python, venv, "install", "--no-index", sdist)
	if err == nil {
		t.Fatalf("pip install %s succeeded:\n%s", filepath.Base(sdist), out)
	}
	for _, want := range []string{"envd is a Go program", "Install the wheel for your platform", "make build"} {
		if !strings.Contains(out, want) {
			t.Errorf("pip install of the sdist: output lacks %q:\n%s", want, out)
		}
	}
}

// isRelease is a version of a tagged commit (no local part).
func isRelease(v string) bool { return !strings.Contains(v, "+") }

// checkWheelBinaries checks that the wheel carries the binaries, executable, as static ELF files for machine.
func checkWheelBinaries(t *testing.T, whl string, machine elf.Machine) {
	t.Helper()
	zr, err := zip.OpenReader(whl)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var got []string
	for _, f := range zr.File {
		dir, base := filepath.Split(f.Name)
		if !strings.HasSuffix(dir, ".data/scripts/") {
			continue
		}
		got = append(got, base)
		if f.Mode().Perm() != 0o755 {
			t.Errorf("%s: %s has mode %v, want 0755", filepath.Base(whl), f.Name, f.Mode())
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		ef, err := elf.NewFile(bytes.NewReader(data))
		if err != nil {
			t.Errorf("%s: %s is not ELF: %v", filepath.Base(whl), f.Name, err)
			continue
		}
		if ef.Machine != machine || ef.Class != elf.ELFCLASS64 {
			t.Errorf("%s: %s is %v %v, want %v", filepath.Base(whl), f.Name, ef.Class, ef.Machine, machine)
		}
		for _, p := range ef.Progs {
			if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
				t.Errorf("%s: %s is not static: it has %v", filepath.Base(whl), f.Name, p.Type)
			}
		}
	}
	if !slices.Equal(got, wheelBinaries) {
		t.Errorf("%s has %q in its scripts, want %q", filepath.Base(whl), got, wheelBinaries)
	}
}

// newVenv makes a venv at dir and returns the python that runs pip for it. A venv without pip, filled by this
// machine's pip (--python, pip 22.3 and later: Debian 12 has 23.0), works where Debian's python3 lacks ensurepip
// (python3-venv not installed); where the host's pip cannot, a venv with its own pip.
func newVenv(t *testing.T, dir string) string {
	t.Helper()
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3: %v", err)
	}
	if out, err := exec.Command(python, "-m", "venv", "--without-pip", dir).CombinedOutput(); err != nil {
		t.Fatalf("python3 -m venv --without-pip: %v\n%s", err, out)
	}
	probe := exec.Command(python, "-m", "pip", "--python", filepath.Join(dir, "bin", "python"), "--version")
	probe.Env = pipEnv()
	out, err := probe.CombinedOutput()
	if err == nil {
		return python
	}
	t.Logf("the host's pip cannot install into the venv (%v: %s); making one with its own pip", err, bytes.TrimSpace(out))
	os.RemoveAll(dir)
	if out, err := exec.Command(python, "-m", "venv", dir).CombinedOutput(); err != nil {
		t.Fatalf("python3 -m venv (with pip): %v\n%s", err, out)
	}
	return filepath.Join(dir, "bin", "python")
}

// pip runs pip for the venv: the host's with --python, or the venv's own.
func pip(python, venv string, args ...string) (string, error) {
	venvPython := filepath.Join(venv, "bin", "python")
	pre := []string{"-m", "pip"}
	if python != venvPython {
		pre = append(pre, "--python", venvPython)
	}
	cmd := exec.Command(python, append(pre, args...)...)
	cmd.Env = pipEnv()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// pipEnv is the environment without the caller's pip settings (this machine sets PIP_FIND_LINKS): pip sees
// only the files it is given.
func pipEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PIP_") && !strings.HasPrefix(kv, "PYTHON") {
			env = append(env, kv)
		}
	}
	return append(env, "PIP_CONFIG_FILE="+os.DevNull, "PIP_DISABLE_PIP_VERSION_CHECK=1", "PIP_NO_INPUT=1")
}

// pathWithout is first, then $PATH without the directories holding any of names (the repository's bin/, a
// harness's build): the envd under test finds only what is beside it.
func pathWithout(first string, names []string) string {
	dirs := []string{first}
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		if d == "" || slices.ContainsFunc(names, func(n string) bool { _, err := os.Stat(filepath.Join(d, n)); return err == nil }) {
			continue
		}
		dirs = append(dirs, d)
	}
	return strings.Join(dirs, string(os.PathListSeparator))
}

func sha256hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
