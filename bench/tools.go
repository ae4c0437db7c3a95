package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/pprof/profile"
)

var toolNames = []string{"envd", "envd-dev", "envd-container", "docker-legacy", "docker-buildkit"}

// A tool builds a project the way a user would, from files it renders.
type tool interface {
	name() string
	// reset clears every cache the tool keeps, for a cold build.
	reset(ctx context.Context) error
	// resetText says what reset does, for the report.
	resetText() string
	// files renders the build files for s.
	files(s spec, w *workload) map[string]string
	// command is the build: extra environment and argv, run in dir; flags
	// are more of the build command's own.
	command(dir, image string, w *workload, flags ...string) (env, argv []string)
	// teamCache says how the tool shares its build cache through the
	// registry ref; false when it has no way.
	teamCache(ref string) (teamCache, bool)
	// parse reads steps, skip and logs from the build's output.
	parse(r *result, stdout, stderr []byte) error
	// recordImage notes an image the tool made, to remove it later.
	recordImage(ref, id string)
	// removeImages removes from Docker the images the tool made.
	removeImages(ctx context.Context) error
	close() error
}

// teamCache is how a tool shares its build cache through a registry: the
// flags of the build that exports it (then a push, for docker's inline
// cache) and of the build that imports it.
type teamCache struct {
	export, imp []string
	push        bool
}

// images are the docker images a tool made: removed by reset and close.
type images struct {
	docker string
	refs   []string // tags and ids
}

func (im *images) recordImage(ref, id string) {
	for _, s := range []string{ref, id} {
		if s != "" && !slices.Contains(im.refs, s) {
			im.refs = append(im.refs, s)
		}
	}
}

func (im *images) removeImages(ctx context.Context) error {
	var errs []error
	for _, ref := range im.refs {
		if err := removeImage(ctx, im.docker, ref); err != nil {
			errs = append(errs, err)
		}
	}
	im.refs = nil
	return errors.Join(errs...)
}

// removeImage removes ref from Docker; one that is gone already is fine.
func removeImage(ctx context.Context, docker, ref string) error {
	out, err := output(ctx, nil, docker, "rmi", "-f", ref)
	if err != nil && !strings.Contains(out, "No such image") {
		return fmt.Errorf("docker rmi %s: %v: %s", ref, err, strings.TrimSpace(out))
	}
	return nil
}

// envdTool runs bin/envd with XDG dirs of its own, so it starts and uses a managed buildkitd of its own.
type envdTool struct {
	images
	bin, buildkitd string
	state          string // XDG dirs and the metadata file
	mirror         string // http://host:port
	// container: the managed builder runs as a container in Docker (what a
	// user who is not root gets), not as a process.
	container bool
	// dev: the build file asks for a dev environment (base(..., dev=True):
	// the user, the agent, sudo, git and the shell), what `envd up` runs;
	// the other tools build the plain image.
	dev bool
}

func (e *envdTool) name() string {
	switch {
	case e.container:
		return "envd-container"
	case e.dev:
		return "envd-dev"
	}
	return "envd"
}

func (e *envdTool) env() []string {
	return []string{
		"XDG_CONFIG_HOME=" + filepath.Join(e.state, "config"),
		"XDG_DATA_HOME=" + filepath.Join(e.state, "data"),
		"XDG_CACHE_HOME=" + filepath.Join(e.state, "cache"),
		"ENVD_BUILDKITD=" + e.buildkitd,
	}
}

func (e *envdTool) envd(ctx context.Context, args ...string) error {
	if out, err := output(ctx, e.env(), e.bin, args...); err != nil {
		return fmt.Errorf("envd %s: %v\n%s", strings.Join(args, " "), err, tail(out, 20))
	}
	return nil
}

// start starts the managed buildkitd with the registry mirror; later builds keep that setting.
func (e *envdTool) start(ctx context.Context) error {
	if e.container {
		if _, err := os.Stat(filepath.Join(e.state, "config", "envd", "contexts.json")); err != nil {
			if err := e.envd(ctx, "context", "create", "bench", "--builder", "managed-container", "--use"); err != nil {
				return err
			}
		}
	}
	return e.envd(ctx, "bootstrap", "--registry-mirror", e.mirror)
}

// stop stops the builder; a container goes with its volume (its state).
func (e *envdTool) stop(ctx context.Context) error {
	if e.container {
		return e.envd(ctx, "bootstrap", "--stop", "--rm")
	}
	return e.envd(ctx, "bootstrap", "--stop")
}

func (e *envdTool) reset(ctx context.Context) error {
	if err := e.stop(ctx); err != nil {
		return err
	}
	// The builder's state (layers, cache mounts) and envd's cache (the hand-over registry's blobs).
	for _, dir := range []string{filepath.Join(e.state, "data", "envd", "buildkit", "root"), filepath.Join(e.state, "cache")} {
		if err := removeTree(dir); err != nil {
			return err
		}
	}
	return e.start(ctx)
}

func (e *envdTool) resetText() string {
	if e.container {
		return "`envd bootstrap --stop --rm` (the builder container and its volume: layers, pip and apt cache mounts); " +
			"delete envd's cache (`$XDG_CACHE_HOME`); `envd bootstrap --registry-mirror " + e.mirror + "` (not timed)"
	}
	return "`envd bootstrap --stop`; delete the managed buildkitd's state (`$XDG_DATA_HOME/envd/buildkit/root`: " +
		"layers, pip and apt cache mounts) and envd's cache (`$XDG_CACHE_HOME`); " +
		"`envd bootstrap --registry-mirror " + e.mirror + "` (the daemon's start is not timed)"
}

func (e *envdTool) files(s spec, w *workload) map[string]string {
	return map[string]string{"build.envd": envdFile(s, w, e.dev), "requirements.txt": requirementsFile(s)}
}

func (e *envdTool) metadataFile() string { return filepath.Join(e.state, "metadata.json") }

func (e *envdTool) profileFile() string { return filepath.Join(e.state, "cpu.pprof") }

func (e *envdTool) command(dir, image string, w *workload, flags ...string) ([]string, []string) {
	argv := []string{e.bin, "build", "-p", dir, "-t", image, "--progress", "rawjson", "--metadata-file", e.metadataFile()}
	return append(e.env(), "ENVD_CPUPROFILE="+e.profileFile()), append(argv, flags...)
}

// teamCache: BuildKit's registry cache, as a team sets it in a context; the
// export build is forced, as the project is unchanged.
func (e *envdTool) teamCache(ref string) (teamCache, bool) {
	return teamCache{export: []string{"--force", "--export-cache", "type=registry,ref=" + ref}, imp: []string{"--import-cache", ref}}, true
}

func (e *envdTool) parse(r *result, stdout, stderr []byte) error {
	data, err := os.ReadFile(e.metadataFile())
	if err != nil {
		return fmt.Errorf("envd wrote no --metadata-file: %w", err)
	}
	os.Remove(e.metadataFile())
	var m struct {
		Cached    int                `json:"steps_cached"`
		Steps     int                `json:"steps"`
		Skipped   bool               `json:"skipped"`
		Installer string             `json:"python_installer"`
		Phases    map[string]float64 `json:"phases"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("reading envd's metadata: %w", err)
	}
	r.Steps, r.Cached, r.Skipped, r.Installer, r.Phases = m.Steps, m.Cached, m.Skipped, m.Installer, m.Phases
	r.steps, r.text = parseRawJSON(stderr)
	if r.EnvdCPU, err = profileCPU(e.profileFile()); err != nil {
		return fmt.Errorf("envd's CPU profile: %w", err)
	}
	os.Remove(e.profileFile())
	return nil
}

// profileCPU is the CPU time a Go CPU profile recorded, in seconds.
func profileCPU(path string) (float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		return 0, err
	}
	i := slices.IndexFunc(p.SampleType, func(t *profile.ValueType) bool { return t.Type == "cpu" && t.Unit == "nanoseconds" })
	if i < 0 {
		return 0, fmt.Errorf("%s holds no CPU samples", path)
	}
	var ns int64
	for _, s := range p.Sample {
		ns += s.Value[i]
	}
	return float64(ns) / 1e9, nil
}

func (e *envdTool) close() error {
	ctx := context.Background()
	return errors.Join(e.stop(ctx), e.removeImages(ctx))
}

// dockerTool runs `docker build` on Debian's docker client, with the legacy builder or dockerd's BuildKit.
type dockerTool struct {
	images
	buildkit bool
	mirror   string
	caBundle string // for PyPI on a network that intercepts TLS; "" when none is needed
}

func (d *dockerTool) name() string {
	if d.buildkit {
		return "docker-buildkit"
	}
	return "docker-legacy"
}

// dockerBaseRefs are the base images as the Dockerfiles name them: from the mirror, since dockerd need not have a
// mirror configured for docker.io.
func dockerBaseRefs(mirror string) []string {
	return []string{dockerBase(mirror, "debian:bookworm"), dockerBase(mirror, benchBase)}
}

func dockerBase(mirror, base string) string { return mirror + "/library/" + base }

func (d *dockerTool) reset(ctx context.Context) error {
	if err := d.removeImages(ctx); err != nil {
		return err
	}
	if out, err := output(ctx, nil, d.docker, "builder", "prune", "-af"); err != nil {
		return fmt.Errorf("docker builder prune: %v: %s", err, out)
	}
	return nil
}

func (d *dockerTool) resetText() string {
	return "`docker builder prune -af`"
}

func (d *dockerTool) useCA(w *workload) bool { return w.pypi && d.caBundle != "" }

func (d *dockerTool) files(s spec, w *workload) map[string]string {
	f := map[string]string{"requirements.txt": requirementsFile(s)}
	if d.buildkit {
		f["Dockerfile"] = buildkitDockerfile(s, w, d.mirror, d.useCA(w))
	} else {
		f["Dockerfile"] = legacyDockerfile(s, w, d.mirror, d.useCA(w))
		if d.useCA(w) {
			pem, err := os.ReadFile(d.caBundle)
			if err == nil {
				f["ca.pem"] = string(pem)
			}
		}
	}
	return f
}

func (d *dockerTool) command(dir, image string, w *workload, flags ...string) ([]string, []string) {
	if !d.buildkit {
		return []string{"DOCKER_BUILDKIT=0"}, append(append([]string{d.docker, "build", "-t", image}, flags...), dir)
	}
	argv := []string{d.docker, "build", "--progress", "plain"}
	if d.useCA(w) {
		argv = append(argv, "--secret", "id=pipcert,src="+d.caBundle)
	}
	return []string{"DOCKER_BUILDKIT=1"}, append(append(append(argv, "-t", image), flags...), dir)
}

// teamCache: without buildx, dockerd's BuildKit shares its cache inline, in
// an image pushed to the registry (mode=min: the layers of the image, which
// for a Dockerfile are all its steps); the legacy builder has none.
func (d *dockerTool) teamCache(ref string) (teamCache, bool) {
	if !d.buildkit {
		return teamCache{}, false
	}
	return teamCache{export: []string{"--build-arg", "BUILDKIT_INLINE_CACHE=1", "-t", ref}, imp: []string{"--cache-from", ref}, push: true}, true
}

func (d *dockerTool) parse(r *result, stdout, stderr []byte) error {
	if d.buildkit {
		r.steps, r.text = parsePlain(stderr)
		r.Steps, r.Cached = countDockerfileSteps(r.steps)
		return nil
	}
	r.text = string(stdout)
	r.Steps, r.Cached = parseLegacy(r.text)
	return nil
}

func (d *dockerTool) close() error { return d.removeImages(context.Background()) }

// caBundle is the CA bundle the host's pip trusts, as envd build picks it by default.
func caBundle() string {
	for _, k := range []string{"ENVD_CA_BUNDLE", "PIP_CERT", "SSL_CERT_FILE"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return ""
}
