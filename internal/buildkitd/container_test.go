package buildkitd

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCapsNotIn(t *testing.T) {
	for _, tc := range []struct {
		name, status string
		want         []string
	}{
		{"full set", "Name:\tx\nCapBnd:\t000001ffffffffff\n", nil},
		{"no CAP_SYS_RESOURCE (bit 24)", "CapBnd:\t000001fffeffffff\n", []string{"SYS_RESOURCE"}},
		{"no line", "Name:\tx\n", nil},
		{"garbage", "CapBnd:\tzz\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := capsNotIn(tc.status); !slices.Equal(got, tc.want) {
				t.Errorf("capsNotIn = %v, want %v", got, tc.want)
			}
		})
	}
}

// The image is made of the real runc of this machine and its libraries.
func TestElfClosureOfRunc(t *testing.T) {
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Skip("no runc here")
	}
	libs, err := elfClosure(runc)
	if err != nil {
		t.Fatal(err)
	}
	if len(libs) == 0 {
		t.Skip("runc is static here")
	}
	var haveLibc bool
	for _, l := range libs {
		if !filepath.IsAbs(l) || !fileExists(l) {
			t.Errorf("%s is not a file on this machine", l)
		}
		haveLibc = haveLibc || strings.HasPrefix(filepath.Base(l), "libc.so")
	}
	if !haveLibc {
		t.Errorf("no libc in %v", libs)
	}
}

func TestImageFilesRefusesDynamicBinaries(t *testing.T) {
	sh, err := exec.LookPath("sh") // dynamically linked on every distribution envd supports
	if err != nil {
		t.Skip(err)
	}
	sh, _ = filepath.EvalSymlinks(sh)
	if interp, _, _ := elfDeps(sh); interp == "" {
		t.Skip("sh is static here")
	}
	static, _ := filepath.Abs("../../bin/envd-handover") // make build's, static: it stands in for buildkitd
	for _, tc := range []struct {
		name, buildkitd, buildctl, handover, want string
	}{
		{"dynamic buildkitd", sh, "", "", "static buildkitd"},
		{"dynamic buildctl", static, sh, "", "static buildctl"},
		{"dynamic envd-handover", static, "", sh, "static envd-handover"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := os.Stat(tc.buildkitd); err != nil {
				t.Skip("no static binary: run make build")
			}
			_, err := imageFiles(tc.buildkitd, tc.buildctl, tc.handover, sh)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), imageEnv) {
				t.Errorf("want an error asking for a %s or %s, got %v", tc.want, imageEnv, err)
			}
		})
	}
}

// Equal files give equal layers (so equal tags), whenever they are made.
func TestWriteLayerIsDeterministic(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "b")
	os.WriteFile(bin, []byte("binary"), 0o755)
	files := []imageFile{{"/usr/bin/buildkitd", bin}, {"/usr/lib/x/libc.so.6", bin}}
	var a, b bytes.Buffer
	if err := writeLayer(&a, files); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(bin, time0, time0)
	if err := writeLayer(&b, files); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("the same files gave different layers")
	}
	var names []string
	tr := tar.NewReader(&a)
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, h.Name)
	}
	want := []string{"tmp/", "usr/", "usr/bin/", "usr/bin/buildkitd", "usr/lib/", "usr/lib/x/", "usr/lib/x/libc.so.6"}
	if !slices.Equal(names, want) {
		t.Errorf("layer holds %v, want %v", names, want)
	}
}

var time0 = time.Unix(0, 0)

// Each kind of builder finds what its image needs beside buildkitd, or
// says what to build.
func TestBuilderFiles(t *testing.T) {
	static, _ := filepath.Abs("../../bin/envd-handover") // make build's, static: it stands in for all three
	if !isExecutable(static) {
		t.Skip("no static binary: run make build")
	}
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Skip("no runc here")
	}
	for _, tc := range []struct {
		name             string
		where            int
		beside           []string // next to buildkitd
		want             string   // in the error; "" = none
		buildctl, handed bool     // in the image
		envdIsStatic     bool     // envd stands in for what is missing
	}{
		{"here, alone", forHere, nil, "", false, false, false},
		{"here, with both", forHere, []string{"buildctl", "envd-handover"}, "", true, true, false},
		{"pod without buildctl", forPod, []string{"envd-handover"}, "for a cluster needs buildctl", false, false, false},
		{"pod", forPod, []string{"buildctl"}, "", true, false, false},
		{"remote without envd-handover", forRemote, []string{"buildctl"}, "for another machine's Docker needs envd-handover", false, false, false},
		{"remote without buildctl", forRemote, []string{"envd-handover"}, "needs buildctl", false, false, false},
		{"remote", forRemote, []string{"buildctl", "envd-handover"}, "", true, true, false},
		{"pod, envd as buildctl", forPod, nil, "", true, false, true},
		{"remote, envd as both", forRemote, nil, "", true, true, true},
		{"here, envd not needed", forHere, nil, "", false, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, b := range append([]string{"buildkitd"}, tc.beside...) {
				if err := os.Symlink(static, filepath.Join(dir, b)); err != nil {
					t.Fatal(err)
				}
			}
			self := "/x/envd"
			if tc.envdIsStatic {
				self = static
			}
			fakeSys(t, 0, map[string]string{"runc": runc}, self)
			files, err := Options{Binary: filepath.Join(dir, "buildkitd")}.builderFiles(tc.where)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "make build") {
					t.Fatalf("err = %v, want %q and a hint to run make build", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			has := func(dest string) bool {
				return slices.ContainsFunc(files, func(f imageFile) bool { return f.dest == dest })
			}
			if has(imageBuildctl) != tc.buildctl || has(imageHandover) != tc.handed {
				t.Errorf("image holds buildctl %v, envd-handover %v; want %v, %v", has(imageBuildctl), has(imageHandover), tc.buildctl, tc.handed)
			}
			if tc.envdIsStatic && tc.handed && tc.buildctl {
				assertOneCopy(t, files, static)
			}
		})
	}
}

// With no buildkitd named and none beside it, envd is the builder image's
// buildkitd, and on another machine its buildctl and envd-handover too:
// one file.
func TestBuilderFilesEnvdItself(t *testing.T) {
	static, _ := filepath.Abs("../../bin/envd-handover") // static: it stands in for envd
	if !isExecutable(static) {
		t.Skip("no static binary: run make build")
	}
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Skip("no runc here")
	}
	envd := filepath.Join(t.TempDir(), "envd")
	if err := os.Symlink(static, envd); err != nil {
		t.Fatal(err)
	}
	fakeSys(t, 0, map[string]string{"runc": runc}, envd)
	t.Setenv("ENVD_BUILDKITD", "")
	for _, where := range []int{forHere, forPod, forRemote} {
		files, err := Options{}.builderFiles(where)
		if err != nil {
			t.Fatal(err)
		}
		if files[0].dest != imageBuildkitd || files[0].src != envd {
			t.Errorf("where %d: buildkitd in the image is %+v, want envd", where, files[0])
		}
		if where == forRemote {
			assertOneCopy(t, files, envd)
		}
	}
}

func TestGoArch(t *testing.T) {
	for machine, want := range map[string]string{"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"} {
		if got := goArch(machine); got != want {
			t.Errorf("goArch(%q) = %q, want %q", machine, got, want)
		}
	}
}

// assertOneCopy: a file in the image under several names (or links to it)
// is written once, and linked from the others.
func assertOneCopy(t *testing.T, files []imageFile, src string) {
	t.Helper()
	resolve := func(p string) string {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return r
		}
		return p
	}
	isSrc := func(f imageFile) bool { return resolve(f.src) == resolve(src) }
	names := 0
	for _, f := range files {
		if isSrc(f) {
			names++
		}
	}
	var b bytes.Buffer
	if err := writeLayer(&b, files); err != nil {
		t.Fatal(err)
	}
	regular, links := 0, 0
	tr := tar.NewReader(&b)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case h.Typeflag == tar.TypeLink:
			links++
			if h.Mode != 0o755 {
				t.Errorf("link %s has mode %o: Docker gives it to the file", h.Name, h.Mode)
			}
		case h.Typeflag == tar.TypeReg && slices.ContainsFunc(files, func(f imageFile) bool { return isSrc(f) && "/"+h.Name == f.dest }):
			regular++
		}
	}
	if regular != 1 || links != names-1 {
		t.Errorf("%s: %d copies and %d links in the layer, want 1 and %d", src, regular, links, names-1)
	}
}
