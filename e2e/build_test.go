package e2e

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"

	"envd.dev/envd/internal/testing/pyindex"
)

// index starts a package index serving freshly made wheels, and uv, which
// envd fetches from the index to resolve and install with.
func index(t *testing.T, wheels ...wheel) *pyindex.Server {
	t.Helper()
	return startIndex(t, true, nil, wheels...)
}

func startIndex(t *testing.T, withUV bool, opts []pyindex.Option, wheels ...wheel) *pyindex.Server {
	t.Helper()
	dir := t.TempDir()
	for _, w := range wheels {
		addWheel(t, dir, w)
	}
	if withUV {
		if err := pyindex.AddToolWheels(dir); err != nil {
			t.Fatal(err)
		}
	}
	srv, err := pyindex.New(dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

type wheel struct {
	name, version string
	requires      []string
}

func addWheel(t *testing.T, dir string, w wheel) string {
	t.Helper()
	p, err := pyindex.MakeWheel(dir, w.name, w.version, pyindex.WheelOptions{Requires: w.requires, PadBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Base(p)
}

// buildFile is a build.envd installing pkgs from the test's index.
func buildFile(indexURL string, apt []string, pkgs []string) string {
	q := func(xs []string) string {
		var s []string
		for _, x := range xs {
			s = append(s, fmt.Sprintf("%q", x))
		}
		return "[" + strings.Join(s, ", ") + "]"
	}
	return fmt.Sprintf(`def build():
    base(image="debian:bookworm")
    install.python()
    config.pip_index(url=%q, trust=True)
    install.apt_packages(name=%s)
    install.python_packages(name=%s)
    runtime.environ(env={"GREETING": "hello"})
`, indexURL, q(apt), q(pkgs))
}

// TestBuildRebuildAndAddPackage is the product's headline: the first build
// downloads each wheel once; an unchanged rebuild is skipped, or fully
// cached when forced; adding a package downloads that package alone. It
// holds on an index with PEP 658 metadata (as PyPI) and on a plain one (a
// directory of wheels behind a web server: no metadata, no Range), where
// uv alone would fetch every wheel twice.
func TestBuildRebuildAndAddPackage(t *testing.T) {
	requireE2E(t)
	for _, tc := range []struct {
		name, project string
		opts          []pyindex.Option
	}{
		{"PEP 658 index", "e2e-rebuild", nil},
		{"plain index", "e2e-rebuild-plain", []pyindex.Option{pyindex.WithoutMetadata()}},
	} {
		t.Run(tc.name, func(t *testing.T) { rebuildAndAddPackage(t, tc.project, tc.opts, tc.opts == nil) })
	}
}

// rebuildAndAddPackage is the scenario on one index; the venv's pip step is
// shared by both, so only the first (cold) checks that it ran.
func rebuildAndAddPackage(t *testing.T, name string, opts []pyindex.Option, cold bool) {
	srv := startIndex(t, true, opts,
		wheel{name: "alpha", version: "1.0"},
		wheel{name: "beta", version: "2.0", requires: []string{"gamma"}},
		wheel{name: "gamma", version: "3.0"},
		wheel{name: "delta", version: "4.0"},
	)
	dir := project(t, name, map[string]string{
		"build.envd": buildFile(srv.URL(), []string{"file"}, []string{"alpha", "beta"}),
	})
	image := name + ":dev"
	removeImage(t, image)

	first := build(t, dir)
	if first.Skipped || first.Image != image {
		t.Fatalf("first build: %+v", first)
	}
	if first.PythonInstaller != "uv" || first.UVFrom != "host" || len(first.Notes) > 0 {
		t.Errorf("packages were installed with %q from %q (notes %q), want uv fetched by envd from the index", first.PythonInstaller, first.UVFrom, first.Notes)
	}
	ranPip := false
	for _, step := range first.Ran {
		if strings.Contains(step, "fetch uv") {
			t.Errorf("ran %q, want uv from the host", step)
		}
		ranPip = ranPip || step == "python runtime: pip for /opt/envd/venv"
	}
	if cold && !ranPip {
		t.Errorf("no step installed pip beside the packages: %q", first.Ran)
	}
	if out := runInImage(t, image, "pip", "--version"); !strings.Contains(out, "/opt/envd/venv") {
		t.Errorf("pip in the image's venv: %q", out)
	}
	if first.Phases["build"] <= 0 || first.Phases["load"] <= 0 {
		t.Errorf("phases = %v, want the build and the load into Docker timed", first.Phases)
	}
	out := runInImage(t, image, "python", "-c", "import alpha, beta, gamma; print(alpha.__version__, beta.__version__, gamma.__version__)")
	if strings.TrimSpace(out) != "1.0 2.0 3.0" {
		t.Errorf("imports in the image printed %q", out)
	}
	if out := runInImage(t, image, "sh", "-c", "file --version >/dev/null && echo $GREETING"); strings.TrimSpace(out) != "hello" {
		t.Errorf("apt package or environ missing: %q", out)
	}
	for _, w := range []string{"alpha-1.0-py3-none-any.whl", "beta-2.0-py3-none-any.whl", "gamma-3.0-py3-none-any.whl"} {
		if n := srv.Downloads(w); n != 1 {
			t.Errorf("first build downloaded %s %d times, want 1", w, n)
		}
	}

	srv.Reset()
	if again := build(t, dir); !again.Skipped {
		t.Errorf("unchanged rebuild was not skipped: %+v", again)
	}
	forced := build(t, dir, "--force")
	if forced.Skipped || forced.Steps == 0 || forced.Cached != forced.Steps {
		t.Errorf("forced unchanged rebuild: %d of %d steps cached, want all; ran %q", forced.Cached, forced.Steps, forced.Ran)
	}
	if n := srv.TotalDownloads(); n != 0 {
		t.Errorf("unchanged rebuilds downloaded %d files, want 0", n)
	}

	os.WriteFile(filepath.Join(dir, "build.envd"), []byte(buildFile(srv.URL(), []string{"file"}, []string{"alpha", "beta", "delta"})), 0o644)
	added := build(t, dir)
	if added.Skipped || added.Cached == 0 {
		t.Errorf("adding a package: %+v, want a build reusing cached steps", added)
	}
	// Only delta's own layer is installed; alpha, beta and gamma stay cached.
	if installs := installSteps(added); len(installs) != 1 || !strings.Contains(installs[0], "delta 4.0") {
		t.Errorf("adding delta ran these install steps: %q; want delta's alone", installs)
	}
	if n := srv.Downloads("delta-4.0-py3-none-any.whl"); n != 1 {
		t.Errorf("delta downloaded %d times, want 1", n)
	}
	if n := srv.TotalDownloads(); n != 1 {
		t.Errorf("adding one package downloaded %d files, want only the new one", n)
	}
	if out := runInImage(t, image, "python", "-c", "import alpha, delta; print(delta.__version__)"); strings.TrimSpace(out) != "4.0" {
		t.Errorf("delta in the image: %q", out)
	}
}

// installSteps are the Python package installs a build ran.
func installSteps(m buildMeta) []string {
	var installs []string
	for _, step := range m.Ran {
		if strings.HasPrefix(step, "python packages: install") {
			installs = append(installs, step)
		}
	}
	return installs
}

// TestUVFetchedInTheBuild: when envd cannot get uv's static build onto
// the host (the index has only uv's glibc wheels), pip in a build step
// fetches the one for the image, and says why.
func TestUVFetchedInTheBuild(t *testing.T) {
	requireE2E(t)
	t.Setenv("XDG_CACHE_HOME", t.TempDir()) // no uv kept by earlier builds
	wheels := t.TempDir()
	addWheel(t, wheels, wheel{name: "alpha", version: "1.0"})
	if err := pyindex.AddToolWheels(wheels); err != nil {
		t.Fatal(err)
	}
	static, _ := filepath.Glob(filepath.Join(wheels, "uv-*musllinux*.whl"))
	for _, f := range static {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	srv, err := pyindex.New(wheels)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	dir := project(t, "e2e-uv-in-build", map[string]string{
		"build.envd": buildFile(srv.URL(), nil, []string{"alpha"}),
	})
	image := "e2e-uv-in-build:dev"
	removeImage(t, image)
	m := build(t, dir)
	if m.PythonInstaller != "uv" || m.UVFrom != "build" {
		t.Errorf("installer %q from %q, want uv fetched by a build step", m.PythonInstaller, m.UVFrom)
	}
	if len(m.Notes) != 1 || !strings.Contains(m.Notes[0], "no static wheel of uv") {
		t.Errorf("notes = %q, want one saying the index has no static uv", m.Notes)
	}
	if out := runInImage(t, image, "sh", "-c", "python -c 'import alpha' && pip --version"); !strings.Contains(out, "/opt/envd/venv") {
		t.Errorf("alpha and pip in the image: %q", out)
	}
}

// TestPipWhenTheIndexHasNoUV: an index without uv still gets the packages
// installed, each in its own layer, by pip.
func TestPipWhenTheIndexHasNoUV(t *testing.T) {
	requireE2E(t)
	t.Setenv("XDG_CACHE_HOME", t.TempDir()) // no uv kept by earlier builds
	srv := startIndex(t, false, nil, wheel{name: "alpha", version: "1.0", requires: []string{"beta"}}, wheel{name: "beta", version: "2.0"})
	dir := project(t, "e2e-pip-fallback", map[string]string{
		"build.envd": buildFile(srv.URL(), nil, []string{"alpha"}),
	})
	image := "e2e-pip-fallback:dev"
	removeImage(t, image)
	m := build(t, dir)
	if m.PythonInstaller != "pip" {
		t.Errorf("installer = %q, want pip", m.PythonInstaller)
	}
	if installs := installSteps(m); len(installs) != 2 {
		t.Errorf("%d install steps ran, want one per distribution (2): %q", len(installs), m.Ran)
	}
	if out := runInImage(t, image, "python", "-c", "import alpha, beta; print(beta.__version__)"); strings.TrimSpace(out) != "2.0" {
		t.Errorf("beta in the image: %q", out)
	}
}

// TestLocalWheels: a wheel in the build directory installs from there, its
// dependency from the index; changing the wheel reinstalls it alone.
func TestLocalWheels(t *testing.T) {
	requireE2E(t)
	srv := index(t, wheel{name: "beta", version: "2.0"}, wheel{name: "gamma", version: "3.0"})
	dir := project(t, "e2e-local-wheels", map[string]string{
		"build.envd": fmt.Sprintf(`def build():
    base(image="debian:bookworm")
    config.pip_index(url=%q, trust=True)
    install.python_packages(name=["gamma"], local_wheels=["dist/mine-0.1-py3-none-any.whl"])
`, srv.URL()),
	})
	makeLocal := func(requires ...string) {
		os.MkdirAll(filepath.Join(dir, "dist"), 0o755)
		if _, err := pyindex.MakeWheel(filepath.Join(dir, "dist"), "mine", "0.1", pyindex.WheelOptions{Requires: requires}); err != nil {
			t.Fatal(err)
		}
	}
	makeLocal("beta")
	image := "e2e-local-wheels:dev"
	removeImage(t, image)
	if m := build(t, dir); m.PythonInstaller != "uv" {
		t.Errorf("installer = %q, want uv", m.PythonInstaller)
	}
	if out := runInImage(t, image, "python", "-c", "import mine, beta, gamma; print(mine.__version__, beta.__version__)"); strings.TrimSpace(out) != "0.1 2.0" {
		t.Errorf("imports in the image printed %q", out)
	}

	makeLocal() // the same wheel without its dependency: new content, same name
	if installs := installSteps(build(t, dir)); len(installs) != 1 || !strings.Contains(installs[0], "mine 0.1") {
		t.Errorf("changing the local wheel ran these install steps: %q; want mine's alone", installs)
	}
	if out := runInImage(t, image, "python", "-c", "import mine, gamma; print(mine.__version__)"); strings.TrimSpace(out) != "0.1" {
		t.Errorf("mine in the image: %q", out)
	}
}

// TestExamples builds the repository's examples, with packages from PyPI.
func TestExamples(t *testing.T) {
	requireE2E(t)
	tests := []struct {
		dir   string
		check []string
		want  string
	}{
		{"python-basic", []string{"sh", "-c", `python -c "import six, tomli; print('ok')" && curl --version >/dev/null && echo $ENVD_EXAMPLE`}, "ok\npython-basic"},
		{"requirements", []string{"sh", "-c", "cat /opt/data/hello.txt /opt/data/six-version"}, "hello from the build directory\n1.16.0"},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			dir, _ := filepath.Abs(filepath.Join("..", "examples", tt.dir))
			image := tt.dir + ":dev"
			removeImage(t, image)
			build(t, dir, "--force")
			if out := runInImage(t, image, tt.check...); strings.TrimSpace(out) != tt.want {
				t.Errorf("%s: got %q, want %q", image, out, tt.want)
			}
		})
	}
}

// TestRequirementsFileChangeReruns: editing requirements.txt reruns pip and
// nothing else.
func TestRequirementsFileChange(t *testing.T) {
	requireE2E(t)
	srv := index(t, wheel{name: "alpha", version: "1.0"}, wheel{name: "beta", version: "2.0"})
	dir := project(t, "e2e-reqs", map[string]string{
		"build.envd": fmt.Sprintf(`def build():
    base(image="debian:bookworm")
    config.pip_index(url=%q, trust=True)
    install.python_packages(requirements="requirements.txt")
`, srv.URL()),
		"requirements.txt": "alpha\n",
	})
	image := "e2e-reqs:dev"
	removeImage(t, image)
	build(t, dir)
	os.WriteFile(filepath.Join(dir, "requirements.txt"), []byte("alpha\nbeta\n"), 0o644)
	srv.Reset()
	m := build(t, dir)
	if m.Skipped || m.Cached == 0 || m.Cached == m.Steps {
		t.Errorf("after editing requirements.txt: %+v, want a partial rebuild", m)
	}
	if srv.TotalDownloads() != 1 || srv.Downloads("beta-2.0-py3-none-any.whl") != 1 {
		t.Errorf("want only beta downloaded, got %d downloads", srv.TotalDownloads())
	}
	if out := runInImage(t, image, "python", "-c", "import beta; print(beta.__version__)"); strings.TrimSpace(out) != "2.0" {
		t.Errorf("beta in the image: %q", out)
	}
}

// TestArchiveOutputs writes an OCI archive whose image holds what the build
// made, and a docker archive that Docker loads and runs.
func TestArchiveOutputs(t *testing.T) {
	requireE2E(t)
	dir := project(t, "e2e-archive", map[string]string{
		"build.envd": `def build():
    base(image="debian:bookworm")
    run(commands=["echo built-by-envd > /marker"])
`,
	})
	ociTar := filepath.Join(t.TempDir(), "env.oci.tar")
	mustEnvd(t, dir, "build", "--progress", "quiet", "--output", "type=oci,dest="+ociTar)
	if got := fileInOCIArchive(t, ociTar, "marker"); strings.TrimSpace(got) != "built-by-envd" {
		t.Errorf("/marker in the OCI archive = %q", got)
	}

	dockerTar := filepath.Join(t.TempDir(), "env.docker.tar")
	mustEnvd(t, dir, "build", "--progress", "quiet", "--output", "type=docker,name=e2e-archive:loaded,dest="+dockerTar)
	removeImage(t, "e2e-archive:loaded")
	if out, err := dockerCmd(t, "load", "-i", dockerTar); err != nil {
		t.Fatalf("docker load: %v\n%s", err, out)
	}
	if out := runInImage(t, "e2e-archive:loaded", "cat", "/marker"); strings.TrimSpace(out) != "built-by-envd" {
		t.Errorf("marker = %q", out)
	}
}

// fileInOCIArchive reads one file of the image in an OCI archive, from the
// topmost layer that has it, with go-containerregistry.
func fileInOCIArchive(t *testing.T, archive, name string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("tar", "-xf", archive, "-C", dir).CombinedOutput(); err != nil {
		t.Fatalf("untar: %v\n%s", err, out)
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatalf("not an OCI layout: %v", err)
	}
	m, err := idx.IndexManifest()
	if err != nil || len(m.Manifests) == 0 {
		t.Fatalf("no manifest in the archive: %v", err)
	}
	img, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for i := len(layers) - 1; i >= 0; i-- {
		rc, err := layers[i].Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			if strings.TrimPrefix(h.Name, "./") == name {
				data, _ := io.ReadAll(tr)
				rc.Close()
				return string(data)
			}
		}
		rc.Close()
	}
	t.Fatalf("%s is in no layer", name)
	return ""
}

// TestPushToRegistry pushes to the local registry and pulls it back.
func TestPushToRegistry(t *testing.T) {
	requireE2E(t)
	host := strings.TrimPrefix(strings.TrimPrefix(mirror, "http://"), "https://")
	ref := host + "/envd-e2e/pushed:1"
	dir := project(t, "e2e-push", map[string]string{
		"build.envd": `def build():
    base(image="debian:bookworm")
    run(commands=["echo pushed > /marker"])
`,
	})
	mustEnvd(t, dir, "build", "--progress", "quiet", "--output", "type=image,name="+ref+",push=true,registry.insecure=true")
	removeImage(t, ref)
	if out, err := dockerCmd(t, "pull", ref); err != nil {
		t.Fatalf("docker pull: %v\n%s", err, out)
	}
	if out := runInImage(t, ref, "cat", "/marker"); strings.TrimSpace(out) != "pushed" {
		t.Errorf("marker = %q", out)
	}
}
