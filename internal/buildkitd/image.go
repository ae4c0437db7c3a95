package buildkitd

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"envd.dev/envd/internal/docker"
	"envd.dev/envd/internal/elfbin"
)

// The builder image is made by envd from files this machine has, so that
// an air-gapped machine with envd and Docker builds without any registry:
// one layer holding the buildkitd envd runs (static; envd itself unless one
// is beside it or named by ENVD_BUILDKITD), the buildctl beside it
// (static: a builder in a cluster or in another machine's Docker is dialled
// through `buildctl dial-stdio`), the envd-handover beside it (static: the
// hand-over registry of a builder in another machine's Docker), this
// machine's runc with the shared libraries it links against, and the CA
// bundle buildkitd needs to pull base images over TLS. Its tag is the layer's digest, so the
// same files always give the same image and a new buildkitd a new one.
const (
	imageRepo      = "envd/buildkit"
	imageBuildkitd = "/usr/bin/buildkitd"
	imageBuildctl  = "/usr/bin/buildctl"
	imageHandover  = "/usr/bin/envd-handover"
	imageRunc      = "/usr/bin/runc"
	imageCABundle  = "/etc/ssl/certs/ca-certificates.crt"
)

// imageLayout changes whenever writeLayer puts other things in the image.
const imageLayout = 5

// imageFile is one file of the image: where it goes, and where it comes from.
type imageFile struct {
	dest string // absolute path in the image
	src  string // file on this machine (symlinks followed)
}

// hostCABundles are where Debian, Fedora and Alpine keep theirs.
var hostCABundles = []string{"/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"}

// imageFiles lists the builder image's files: buildkitd, buildctl and
// envd-handover ("" leaves either out), which must be static (they cannot
// bring their libc along), and runc with its closure.
func imageFiles(buildkitd, buildctl, handover, runc string) ([]imageFile, error) {
	files := []imageFile{{imageBuildkitd, buildkitd}}
	if buildctl != "" {
		files = append(files, imageFile{imageBuildctl, buildctl})
	}
	if handover != "" {
		files = append(files, imageFile{imageHandover, handover})
	}
	for _, f := range files {
		if interp, _, err := elfDeps(f.src); err != nil {
			return nil, fmt.Errorf("read %s: %w", f.src, err)
		} else if interp != "" {
			return nil, &Error{Kind: ErrNotFound,
				Msg:  fmt.Sprintf("%s is linked dynamically; the builder image needs a static %s", f.src, path.Base(f.dest)),
				Hint: "build it with CGO_ENABLED=0 (`make build` does), or set " + imageEnv + " to a BuildKit image you have"}
		}
	}
	files = append(files, imageFile{imageRunc, runc})
	libs, err := elfClosure(runc)
	if err != nil {
		return nil, fmt.Errorf("the libraries %s needs: %w", runc, err)
	}
	for _, l := range libs {
		files = append(files, imageFile{l, l})
	}
	for _, ca := range hostCABundles {
		if _, err := os.Stat(ca); err == nil {
			files = append(files, imageFile{imageCABundle, ca})
			break
		}
	}
	return files, nil
}

// elfDeps returns bin's interpreter ("" for a static binary) and the
// libraries it names (DT_NEEDED).
func elfDeps(bin string) (interp string, needed []string, err error) {
	info, err := elfbin.Read(bin)
	return info.Interp, info.Needed, err
}

// libDirs are searched for a library by name, as the dynamic loader would
// (multiarch directories first, as on Debian and Ubuntu).
var libDirs = []string{
	"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
	"/lib64", "/usr/lib64", "/lib", "/usr/lib",
}

// elfClosure returns the interpreter and every library bin needs, directly
// or through another library, as paths on this machine.
func elfClosure(bin string) ([]string, error) {
	interp, needed, err := elfDeps(bin)
	if err != nil || interp == "" {
		return nil, err
	}
	out := []string{interp}
	seen := map[string]bool{}
	for len(needed) > 0 {
		lib := needed[0]
		needed = needed[1:]
		if seen[lib] {
			continue
		}
		seen[lib] = true
		found := ""
		for _, dir := range append([]string{filepath.Dir(interp)}, libDirs...) {
			if p := filepath.Join(dir, lib); fileExists(p) {
				found = p
				break
			}
		}
		if found == "" {
			return nil, fmt.Errorf("%s not found in %s", lib, strings.Join(libDirs, ", "))
		}
		if !slices.Contains(out, found) {
			out = append(out, found)
		}
		_, more, err := elfDeps(found)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", found, err)
		}
		needed = append(needed, more...)
	}
	return out, nil
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// writeLayer writes files as a tar stream: parent directories first, every
// entry owned by root and dated 1970, so equal files give equal bytes.
func writeLayer(w io.Writer, files []imageFile) error {
	tw := tar.NewWriter(w)
	// buildkitd makes its temporary files in /tmp.
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "tmp/", Mode: 0o1777, Format: tar.FormatPAX}); err != nil {
		return err
	}
	dirs := map[string]bool{}
	written := map[string]string{} // file -> dest: envd as buildkitd, buildctl and envd-handover is one file
	for _, f := range files {
		var parents []string
		for d := path.Dir(f.dest); d != "/" && !dirs[d]; d = path.Dir(d) {
			parents = append(parents, d)
			dirs[d] = true
		}
		slices.Reverse(parents)
		for _, d := range parents {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(d, "/") + "/", Mode: 0o755, Format: tar.FormatPAX}); err != nil {
				return err
			}
		}
		file := f.src
		if real, err := filepath.EvalSymlinks(f.src); err == nil {
			file = real // links to one file (buildkitd -> envd) are that file
		}
		if first, ok := written[file]; ok {
			// With the file's own mode: Docker gives the link's to the file.
			hdr := &tar.Header{Typeflag: tar.TypeLink, Name: strings.TrimPrefix(f.dest, "/"), Linkname: strings.TrimPrefix(first, "/"), Mode: 0o755, Format: tar.FormatPAX}
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			continue
		}
		written[file] = f.dest
		if err := addFile(tw, f); err != nil {
			return err
		}
	}
	return tw.Close()
}

func addFile(tw *tar.Writer, f imageFile) error {
	src, err := os.Open(f.src)
	if err != nil {
		return err
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return err
	}
	mode := int64(0o644)
	if fi.Mode().Perm()&0o111 != 0 {
		mode = 0o755
	}
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(f.dest, "/"), Mode: mode, Size: fi.Size(), Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err = io.Copy(tw, src)
	return err
}

// builderImage makes the image from files, in a temporary file under dir,
// and returns it with its tag.
func builderImage(dir string, files []imageFile) (name.Tag, v1.Image, func(), error) {
	tmp, err := os.CreateTemp(dir, "builder-layer-*.tar")
	if err != nil {
		return name.Tag{}, nil, nil, err
	}
	cleanup := func() { tmp.Close(); os.Remove(tmp.Name()) }
	h := sha256.New()
	if err := writeLayer(io.MultiWriter(tmp, h), files); err != nil {
		cleanup()
		return name.Tag{}, nil, nil, err
	}
	layer, err := tarball.LayerFromFile(tmp.Name())
	if err != nil {
		cleanup()
		return name.Tag{}, nil, nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		cleanup()
		return name.Tag{}, nil, nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		cleanup()
		return name.Tag{}, nil, nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config.Entrypoint = []string{imageBuildkitd}
	cf.Config.Env = []string{"PATH=/usr/bin:/usr/sbin:/bin:/sbin"}
	cf.Config.Labels = map[string]string{"org.opencontainers.image.description": "BuildKit for envd, made by envd from " + describe(files)}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		cleanup()
		return name.Tag{}, nil, nil, err
	}
	tag, err := name.NewTag(imageRepo + ":" + hex.EncodeToString(h.Sum(nil))[:16])
	if err != nil {
		cleanup()
		return name.Tag{}, nil, nil, err
	}
	return tag, img, cleanup, nil
}

func describe(files []imageFile) string {
	var srcs []string
	for _, f := range files[:min(3, len(files))] {
		srcs = append(srcs, f.src)
	}
	return strings.Join(srcs, ", ")
}

// Where a builder runs, for what its image must hold.
const (
	forHere   = iota // a container on this machine: buildctl and envd-handover if they are there
	forPod           // in a cluster: buildctl
	forRemote        // in another machine's Docker: buildctl and envd-handover
)

// builderFiles finds what the builder image is made of. buildctl and
// envd-handover are the ones beside buildkitd; a builder on this machine
// does without them, one elsewhere (where) needs them.
func (o Options) builderFiles(where int) ([]imageFile, error) {
	bin, err := o.binary()
	if err != nil {
		return nil, err
	}
	buildctl, handover := besideOrNone(bin, "buildctl"), besideOrNone(bin, "envd-handover")
	// envd is either of them when it runs under that name (internal/multicall),
	// so envd alone will do; imageFiles checks it is static.
	if self, err := sys.executable(); err == nil && isExecutable(self) {
		if buildctl == "" && where != forHere {
			buildctl = self
		}
		if handover == "" && where == forRemote {
			handover = self
		}
	}
	forWhat := map[int]string{forPod: "a cluster", forRemote: "another machine's Docker"}[where]
	if buildctl == "" && where != forHere {
		return nil, &Error{Kind: ErrNotFound,
			Msg:  "the builder image for " + forWhat + " needs buildctl beside " + bin + ", and there is none",
			Hint: "run `make build` (it builds both), or set " + imageEnv + " to a BuildKit image with buildctl (moby/buildkit has it)"}
	}
	if handover == "" && where == forRemote {
		return nil, &Error{Kind: ErrNotFound,
			Msg:  "the builder image for " + forWhat + " needs envd-handover beside " + bin + ", and there is none",
			Hint: "run `make build` (it builds it)"}
	}
	runc, err := sys.lookPath("runc")
	if err != nil {
		return nil, &Error{Kind: ErrNoRunc,
			Msg:  "the builder image is made with this machine's runc, and runc is not on PATH",
			Hint: "install runc (it comes with Docker: apt-get install -y runc), or set " + imageEnv + " to a BuildKit image you have"}
	}
	return imageFiles(bin, buildctl, handover, runc)
}

// besideOrNone is the executable name in bin's directory, or "".
func besideOrNone(bin, name string) string {
	if p := filepath.Join(filepath.Dir(bin), name); isExecutable(p) {
		return p
	}
	return ""
}

// fingerprint names files by path, size and modification time: cheap
// enough for every build, and it changes when any of them is replaced.
func fingerprint(files []imageFile) string {
	h := sha256.New()
	fmt.Fprintf(h, "layout %d\n", imageLayout)
	for _, f := range files {
		fi, err := os.Stat(f.src)
		if err != nil {
			fmt.Fprintf(h, "%s %s missing\n", f.dest, f.src)
			continue
		}
		fmt.Fprintf(h, "%s %s %d %d\n", f.dest, f.src, fi.Size(), fi.ModTime().UnixNano())
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// ensureImage returns envd's builder image in dk, made and loaded if it is
// not there yet.
func (o Options) ensureImage(ctx context.Context, dk *docker.Client, files []imageFile) (string, error) {
	tag, img, cleanup, err := builderImage(o.Dir, files)
	if err != nil {
		return "", fmt.Errorf("make the builder image: %w", err)
	}
	defer cleanup()
	if _, err := dk.InspectImage(ctx, tag.String()); err == nil {
		return tag.String(), nil
	} else if !errors.Is(err, docker.ErrImageNotFound) {
		return "", err
	}
	o.logf("making the builder image %s from %s", tag, describe(files))
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(tarball.Write(tag, img, pw)) }()
	if err := dk.Load(ctx, pr); err != nil {
		pr.CloseWithError(err)
		return "", fmt.Errorf("load the builder image into Docker: %w", err)
	}
	return tag.String(), nil
}
