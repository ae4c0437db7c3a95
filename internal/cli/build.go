package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/solver/pb"
	"github.com/moby/buildkit/util/progress/progressui"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"envd.dev/envd/internal/builder"
	"envd.dev/envd/internal/builderctx"
	"envd.dev/envd/internal/buildkey"
	"envd.dev/envd/internal/buildkitd"
	"envd.dev/envd/internal/compile"
	"envd.dev/envd/internal/docker"
	"envd.dev/envd/internal/indexproxy"
	"envd.dev/envd/internal/ir"
	"envd.dev/envd/internal/lang"
	"envd.dev/envd/internal/registry"
)

// buildOptions are the raw flags of `envd build`.
type buildOptions struct {
	path          string
	file          string
	tag           string
	output        string
	progress      string
	mirror        string
	force         bool
	metadataFile  string
	caBundle      string
	loadVia       string
	marketplace   string
	updateModules bool
	dryRun        bool
	// push, set by up for a runtime that pulls, is REGISTRY[/PREFIX]: the
	// image is pushed to push/TAG instead of loaded into Docker.
	push string
	// projectCopied, set by up for a runtime that copies the project into
	// the environment (a cluster's), builds the dev user with the image's
	// default IDs; otherwise the project is shared with this machine, as
	// with the local Docker (see devIDs).
	projectCopied bool
	// userMapped, set for rootless Podman: the host user is the image's
	// dev user inside (keep-id), so the image keeps its own dev UID.
	userMapped bool
	cache      cacheFlags
	platform   string
	// exportCache: a context's cache is exported too (envd build), not
	// only imported (envd up).
	exportCache bool
}

func newBuildCmd(s streams) *cobra.Command {
	o := &buildOptions{}
	c := &cobra.Command{
		Use:   "build",
		Short: "Build the environment described by build.envd into an image",
		Args:  exactArgs(0),
		RunE: func(c *cobra.Command, _ []string) error {
			return runBuild(c.Context(), s, o)
		},
	}
	addBuildFlags(c, o)
	return c
}

func addBuildFlags(c *cobra.Command, o *buildOptions) {
	f := c.Flags()
	f.StringVarP(&o.path, "path", "p", ".", "build directory")
	f.StringVarP(&o.file, "file", "f", "build.envd", "build file and function, FILE[:FUNC] (relative to the build directory)")
	f.StringVarP(&o.tag, "tag", "t", "", "image name (default <directory name>:dev)")
	f.StringVarP(&o.output, "output", "o", "", "where the image goes: type=docker (default), type=oci,dest=FILE, type=image,name=REF[,push=true]")
	f.StringVar(&o.file, "from", "build.envd", "the original envd's name for --file")
	f.StringVar(&o.platform, "platform", "", "the image's platform: linux/amd64 or linux/arm64 (or linux/x86_64, linux/aarch64); default: the builder's")
	f.StringVar(&o.progress, "progress", "auto", "progress output: auto, tty, plain, rawjson or quiet")
	f.StringVar(&o.mirror, "registry-mirror", "", "docker.io registry mirror for the managed builder, e.g. http://127.0.0.1:5000 (kept for later builds)")
	f.BoolVar(&o.force, "force", false, "build even when nothing changed since the last build")
	f.StringVar(&o.metadataFile, "metadata-file", "", "write the build result as JSON to this file")
	f.BoolVar(&o.updateModules, "update-modules", false, "fetch every include(git=...) again and move its pin in envd.lock to the current commit of its ref")
	f.BoolVar(&o.dryRun, "dry-run", false, "print the plan (steps, cache mounts, parallel stages) and build nothing")
	f.StringVar(&o.marketplace, "vscode-marketplace", defaultMarketplace(), "Open VSX-compatible URL for install.vscode_extensions (default $ENVD_VSCODE_MARKETPLACE, else Open VSX)")
	f.StringVar(&o.loadVia, "load-via", "auto", "how the image reaches Docker: registry (only the layers Docker lacks, through a registry envd runs on 127.0.0.1), tarball (docker load), or auto (registry when the builder runs on this machine)")
	f.StringVar(&o.caBundle, "ca-bundle", defaultCABundle(), "CA certificates that downloads in build steps trust, for networks that intercept TLS (default: $ENVD_CA_BUNDLE, $PIP_CERT or $SSL_CERT_FILE when set, else the system bundle); never stored in the image")
	addCacheFlags(c, o)
	o.exportCache = true
}

// addCacheFlags adds --export-cache and --import-cache (build and up).
func addCacheFlags(c *cobra.Command, o *buildOptions) {
	f := c.Flags()
	f.StringArrayVar(&o.cache.exports, "export-cache", nil, "write the build cache for other builders: type=registry,ref=REF[,mode=min|max] (default max) or type=local,dest=DIR, or just REF (default: the context's --cache, by envd build)")
	f.StringArrayVar(&o.cache.imports, "import-cache", nil, "use a build cache others wrote: type=registry,ref=REF or type=local,src=DIR, or just REF (default: the context's --cache)")
}

func defaultMarketplace() string {
	if v := os.Getenv("ENVD_VSCODE_MARKETPLACE"); v != "" {
		return v
	}
	return compile.DefaultVSCodeMarketplace
}

// defaultCABundle follows the trust the host's own pip and curl are given:
// the bundle they are pointed at, else the system's (which holds any CA the
// administrator added, e.g. a proxy's).
func defaultCABundle() string {
	for _, k := range []string{"ENVD_CA_BUNDLE", "PIP_CERT", "SSL_CERT_FILE"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	if _, err := os.Stat(systemCABundle); err == nil {
		return systemCABundle
	}
	return ""
}

const systemCABundle = "/etc/ssl/certs/ca-certificates.crt"

// buildPlan is a build.envd loaded and checked, ready to build.
type buildPlan struct {
	dir      string // absolute build directory
	project  string
	file     string // build file as shown in messages
	env      *ir.Environment
	files    []string
	tag      string
	export   builder.Export
	buildKey string // "" when the build cannot be skipped
	platform compile.Platform
	// agentDir holds the envd-agent binary for dev images, named agentFile
	// (findAgent).
	agentDir, agentFile string
	// devUser are the IDs the dev user is built with (compile.Options.DevUser).
	devUser compile.DevIDs
	// cacheImports and cacheExports are the team cache (--import-cache,
	// --export-cache, the context's --cache).
	cacheImports, cacheExports []client.CacheOptionsEntry
}

func (o *buildOptions) plan(ctx context.Context) (*buildPlan, error) {
	// Before anything is read or built: a bad tag was found only by the
	// final docker tag, after the whole build, leaving a stray image.
	if o.tag != "" {
		if err := checkTag(o.tag); err != nil {
			return nil, err
		}
	}
	var platform compile.Platform
	if o.platform != "" {
		var err error
		if platform, err = parsePlatform(o.platform); err != nil {
			return nil, err
		}
	}
	dir, err := filepath.Abs(o.path)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, usageError{fmt.Errorf("build directory %s does not exist", o.path)}
	}
	file, fn := o.file, "build"
	if i := strings.LastIndex(file, ":"); i > 0 {
		file, fn = file[:i], file[i+1:]
	}
	if !filepath.IsAbs(file) {
		file = filepath.Join(o.path, file)
	}
	if _, err := os.Stat(file); err != nil {
		return nil, fmt.Errorf("no build file %s: create one (see the README's build-file reference) or pass -f FILE", file)
	}
	if _, err := progressMode(o.progress); err != nil {
		return nil, err
	}
	loaded, err := lang.Loader{UpdateModules: o.updateModules, Abort: abortLoad}.Load(file, fn)
	if err != nil {
		return nil, err
	}
	p := &buildPlan{dir: dir, project: projectName(dir), file: file, env: loaded.Env, files: loaded.Files}
	if err := checkContextFiles(p.env, dir); err != nil {
		return nil, err
	}
	p.tag = o.tag
	if p.tag == "" {
		p.tag = p.project + ":dev"
	}
	if p.export, err = builder.ParseOutput(o.output, p.tag); err != nil {
		return nil, usageError{err}
	}
	cur, err := selectedContext()
	if err != nil {
		return nil, err
	}
	if p.cacheImports, p.cacheExports, err = o.cache.caches(cur, o.exportCache); err != nil {
		return nil, err
	}
	if p.platform = platform; o.platform == "" {
		if p.platform, err = defaultPlatform(ctx, cur); err != nil {
			return nil, err
		}
	}
	if o.push != "" {
		p.export = pushExport(o.push, p.tag)
	}
	if p.env.Base.Dev {
		p.devUser = devIDs(!o.projectCopied && !o.userMapped)
	}
	buildFiles := p.files
	if p.env.Base.Dev && !o.dryRun {
		if p.agentDir, p.agentFile, err = findAgent(p.platform); err != nil {
			return nil, err
		}
		// A new agent means a new image.
		buildFiles = append(buildFiles, filepath.Join(p.agentDir, p.agentFile))
	}
	if p.export.IntoDocker() || p.export.Push {
		key, err := p.key(buildFiles, o.marketplace)
		if err == nil {
			p.buildKey = key
		} else if !errors.Is(err, buildkey.ErrUncacheable) {
			return nil, unreadableInput(err)
		}
	}
	return p, nil
}

// key is the build key of p (buildkey.Compute), reading buildFiles.
func (p *buildPlan) key(buildFiles []string, marketplace string) (string, error) {
	return buildkey.Compute(buildkey.Inputs{
		// A new envd rebuilds: its build of the source, not only its name.
		EnvdVersion: thisBuild().ID, Env: p.env, Platform: p.platform.String(), BuildFiles: buildFiles, ContextDir: p.dir,
		// Each dev user has an image of their own: the IDs are in its files.
		Extra: []string{"project=" + p.project, "vscode-marketplace=" + marketplace, "devuser=" + p.devUser.String()},
	})
}

// devIDs are the UID and GID a dev image's user is built with. Where the
// project is shared with this machine the agent gives the dev user the host
// user's IDs when it starts (devUser in up.go), so the image is built with
// them too: its home and venv are then that user's, and pip needs no sudo.
// Root on the host runs the environment as root, and a copied project keeps
// the image's default (the zero value, contract.DevUID).
func devIDs(projectShared bool) compile.DevIDs {
	return devIDsOf(projectShared, os.Getuid(), os.Getgid())
}

// devIDsOf is devIDs for a host user with uid and gid.
func devIDsOf(projectShared bool, uid, gid int) compile.DevIDs {
	if !projectShared || uid <= 0 || gid < 0 { // -1: a system without UIDs
		return compile.DevIDs{}
	}
	return compile.DevIDs{UID: uid, GID: gid}
}

// pushExport pushes the image to REGISTRY[/PREFIX]/TAG; a registry on this
// machine speaks plain http, as Docker assumes for one.
func pushExport(reg, tag string) builder.Export {
	e := builder.Export{Type: builder.ExportImage, Name: reg + "/" + tag, Push: true, Attrs: map[string]string{}}
	if loopbackRegistry(reg) {
		e.Attrs["registry.insecure"] = "true"
	}
	return e
}

// unreadableInput explains a file the build reads that could not be hashed
// (most often one removed between loading the build file and hashing it).
func unreadableInput(err error) error {
	var pathErr *fs.PathError
	if !errors.As(err, &pathErr) {
		return err
	}
	return fmt.Errorf("cannot read %s, which the build uses: %v\n  hint: check that it exists and is readable; if it was being changed or removed just now, run the command again", pathErr.Path, pathErr.Err)
}

// checkTag accepts what Docker accepts as an image name to tag: a
// lower-case repository with an optional registry host and :tag, no digest.
func checkTag(tag string) error {
	ref, err := reference.ParseNormalizedNamed(tag)
	if err == nil {
		if _, digested := ref.(reference.Digested); digested {
			err = errors.New("a digest (@sha256:...) names an image, it cannot be given to a new one")
		}
	}
	if err != nil {
		return usageError{fmt.Errorf("-t %q is not a valid image name: %v\n  hint: use NAME[:TAG] with a lower-case name (letters, digits, and . _ - between them, / between parts) and a tag of letters, digits, _ . - (up to 128), e.g. myproject:dev or registry.example.com/team/app:v1", tag, err)}
	}
	return nil
}

// abortLoad ends envd when a build file's evaluation passed its memory
// bound inside one call that cannot be interrupted: exiting is the only way
// to give the memory back before the machine runs out.
func abortLoad(err error) {
	fmt.Fprintf(os.Stderr, "error: %v\n", err)
	os.Exit(exitError)
}

var notNameChars = regexp.MustCompile(`[^a-z0-9_.-]+`)

// projectName turns a directory into a valid image and host name.
func projectName(dir string) string {
	n := notNameChars.ReplaceAllString(strings.ToLower(filepath.Base(dir)), "-")
	n = strings.Trim(n, "-_.")
	if n == "" {
		return "envd"
	}
	return n
}

// checkContextFiles reports files the environment names that do not exist,
// at the line that names them.
func checkContextFiles(env *ir.Environment, dir string) error {
	var errs []error
	check := func(p string, pos ir.Pos, what string) {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			errs = append(errs, ir.Errorf(pos, fmt.Sprintf("create it, or give a path relative to the build directory %s", dir), "%s %q not found", what, p))
		}
	}
	for _, f := range env.Requirements {
		check(f.Path, f.Pos, "requirements file")
	}
	for _, f := range env.LocalWheels {
		check(f.Path, f.Pos, "wheel")
	}
	for _, s := range env.Steps {
		if s.Copy != nil && s.Copy.Image == "" { // a copy from an image reads no file here
			check(s.Copy.Source, s.Pos, "copy source")
		}
	}
	for _, x := range env.VSCodeExtensions {
		if ir.IsLocalVSIX(x.Name) {
			check(x.Name, x.Pos, "extension file")
		}
	}
	return errors.Join(errs...)
}

func progressMode(m string) (progressui.DisplayMode, error) {
	switch progressui.DisplayMode(m) {
	case progressui.AutoMode, progressui.TtyMode, progressui.PlainMode, progressui.RawJSONMode, progressui.QuietMode:
		return progressui.DisplayMode(m), nil
	}
	return "", usageError{fmt.Errorf("--progress %q: use auto, tty, plain, rawjson or quiet", m)}
}

// buildResult is what a build reports (and writes to --metadata-file).
type buildResult struct {
	Image   string   `json:"image"`
	Output  string   `json:"output"`
	Digest  string   `json:"digest,omitempty"`
	Size    int64    `json:"size,omitempty"`
	Seconds float64  `json:"seconds"`
	Cached  int      `json:"steps_cached"`
	Steps   int      `json:"steps"`
	Ran     []string `json:"steps_run,omitempty"` // names of the steps not taken from the cache
	Skipped bool     `json:"skipped"`
	// PythonInstaller is uv, or pip when the package index has no uv.
	PythonInstaller string `json:"python_installer,omitempty"`
	// UVFrom says where uv came from: "host" (fetched by envd, kept in its
	// cache) or "build" (fetched by pip in a build step).
	UVFrom string `json:"uv_from,omitempty"`
	// Notes are said after the build: what did not go the fast way, and why.
	Notes []string `json:"notes,omitempty"`
	// IndexProxy is what the package index proxy did, when the build had one.
	IndexProxy indexproxy.Stats `json:"index_proxy,omitzero"`
	// Phases are the seconds spent connecting to the builder, building
	// (resolve, solve, export) and loading into Docker.
	Phases map[string]float64 `json:"phases,omitempty"`
}

func (r *buildResult) phase(name string, since time.Time) {
	if r.Phases == nil {
		r.Phases = map[string]float64{}
	}
	r.Phases[name] = time.Since(since).Seconds()
}

func runBuild(ctx context.Context, s streams, o *buildOptions) error {
	start := time.Now()
	c, err := selectedContext()
	if err != nil {
		return err
	}
	if c.IsKubePod() && o.output == "" {
		// Built in the cluster, the image goes where the cluster pulls
		// from, as envd up puts it: it never comes to this machine.
		o.push = c.Kube.Registry
		o.projectCopied = true
	}
	if c.RuntimeKind() == builderctx.RuntimeSSH && o.output == "" {
		// Into the server's Docker, for envd up there: the same image up
		// plans (its dev user keeps the image's UID, as the copied project
		// is that user's), so that up finds it built.
		o.projectCopied = true
	}
	o.userMapped = podmanMapsUser(c)
	p, err := o.plan(ctx)
	if err != nil {
		return err
	}
	if o.dryRun {
		plan, err := compile.Plan(ctx, p.env, compile.Options{Project: p.project, EnvdVersion: thisBuild().Version, Platform: p.platform,
			BuildKey: p.buildKey, DevUser: p.devUser})
		if err != nil {
			return err
		}
		fmt.Fprint(s.out, plan)
		return nil
	}
	res, err := buildPlanned(ctx, s, o, p)
	if err != nil {
		return err
	}
	res.Seconds = time.Since(start).Seconds()
	return reportBuild(s, o, res)
}

// buildPlanned builds p, or skips it when Docker already has the image for
// the same build key.
func buildPlanned(ctx context.Context, s streams, o *buildOptions, p *buildPlan) (*buildResult, error) {
	res := &buildResult{Image: p.tag, Output: p.export.Type}
	if p.export.Dest != "" {
		res.Image = p.export.Dest
	}
	var secrets map[string][]byte
	if o.caBundle != "" {
		pem, err := os.ReadFile(o.caBundle)
		if err != nil {
			return nil, usageError{fmt.Errorf("--ca-bundle: %w (give a PEM file, or --ca-bundle \"\" for none)", err)}
		}
		secrets = map[string][]byte{compile.CABundleSecret: pem}
	}
	// An export asked for is done even when the image is up to date.
	skippable := p.buildKey != "" && !o.force && len(o.cache.exports) == 0
	if p.export.Push && skippable {
		// Pushed before, from the same inputs: nothing to build or push.
		img, err := registry.Lookup(ctx, p.export.Name, p.export.Attrs["registry.insecure"] == "true")
		if err == nil && img.Labels[compile.LabelBuildKey] == p.buildKey {
			res.Skipped, res.Digest = true, img.Digest
			return res, nil
		}
		if err != nil && !errors.Is(err, registry.ErrNotFound) {
			return nil, err
		}
	}
	c, err := selectedContext()
	if err != nil {
		return nil, err
	}
	var dk *docker.Client
	if p.export.IntoDocker() {
		if dk, err = dockerFor(ctx, c); err != nil {
			return nil, err
		}
		defer closeDocker(c, dk)
		if img, err := dk.InspectImage(ctx, p.tag); err == nil && skippable &&
			img.Labels[compile.LabelBuildKey] == p.buildKey {
			res.Skipped, res.Size, res.Digest = true, img.Size, img.ID
			return res, nil
		}
	}

	caPEM := secrets[compile.CABundleSecret]
	uv := startHostUV(ctx, p.env, caPEM, p.platform.Arch)
	locals := map[string]string{}
	if p.agentDir != "" {
		locals[compile.LocalAgent] = p.agentDir
	}
	if uv != nil {
		// Read by the solve only once compile has seen uv there.
		locals[compile.LocalUV] = uv.cache
	}

	phase := time.Now()
	bk, local, err := connectBuilder(ctx, s, o.mirror)
	if err != nil {
		return nil, err
	}
	defer bk.Close()
	if err := checkBuilderPlatform(ctx, bk, p.platform); err != nil {
		return nil, err
	}
	res.phase("connect", phase)
	if local {
		proxy, err := startIndexProxy(p.env.PipIndex, caPEM)
		if err != nil {
			return nil, err
		}
		if proxy != nil {
			defer func() {
				res.IndexProxy = proxy.Stats()
				proxy.Close()
			}()
			if proxy.note != "" {
				res.Notes = append(res.Notes, proxy.note)
			}
			if secrets == nil {
				secrets = map[string][]byte{}
			}
			maps.Copy(secrets, proxy.secrets)
		}
	}

	export := p.export
	var hand *handoverPlan
	if dk != nil {
		if c.RuntimeKind() == builderctx.RuntimeSSH {
			bo, err := serverBuilderOptions(ctx, c, buildkitd.Options{})
			if err != nil {
				return nil, err
			}
			hand, err = planServerHandover(ctx, o.loadVia, bo, p.tag)
		} else {
			hand, err = planHandover(c, o.loadVia, local, p.tag)
		}
		if err != nil {
			return nil, err
		}
		if hand != nil {
			defer hand.reg.Close()
			export = hand.export
		}
	}

	mode, _ := progressMode(o.progress)
	display, err := progressui.NewDisplay(s.err, mode)
	if err != nil {
		return nil, err
	}
	tr := newTracker()
	layers := layerOrderFile(p.tag)
	status := make(chan *client.SolveStatus)
	req := builder.Request{
		BaseImage:  p.env.Base.Image,
		Platform:   p.platform.OCI(),
		ContextDir: p.dir,
		Locals:     locals,
		Export:     export,
		Status:     status,
		Secrets:    secrets,
		// The user's Docker login, for a push, a team cache or a base image.
		Credentials:  dockerLogin,
		CacheImports: p.cacheImports,
		CacheExports: p.cacheExports,
		Compile: func(ctx context.Context, base *ocispecs.Image, baseDigest string, solver compile.Solver) (*compile.Result, error) {
			hostUV := ""
			if uv != nil {
				var err error
				if hostUV, err = uv.wait(ctx); err != nil {
					res.Notes = append(res.Notes, fmt.Sprintf("uv %s could not be fetched onto this machine, so a build step fetched it: %v", compile.UVVersion, err))
				}
			}
			r, err := compile.Build(ctx, p.env, compile.Options{
				Project: p.project, EnvdVersion: thisBuild().Version, Platform: p.platform, Base: base, BaseDigest: baseDigest, BuildKey: p.buildKey,
				CABundle: caPEM != nil, VSCodeMarketplace: o.marketplace, LayerOrder: layers.previous(), HostUV: hostUV,
				DevUser: p.devUser, AgentFile: p.agentFile,
			}, solver)
			if err == nil {
				tr.setSteps(stepDigests(r.Def.Def))
				layers.next = r.LayerOrder
				res.PythonInstaller = r.Installer
				if r.Installer == compile.InstallerUV {
					res.UVFrom = map[bool]string{true: "host", false: "build"}[hostUV != ""]
				}
			}
			return r, err
		},
	}
	if dk != nil {
		req.Load = dk.Load
	}
	if hand != nil {
		req.RegistryAuth = hand.auth()
		req.BeforeExport = hand.reg.Serve
	}
	var out *builder.Result
	phase = time.Now()
	eg, egctx := errgroup.WithContext(ctx)
	eg.Go(func() error {
		var err error
		out, err = builder.Build(egctx, bk, req)
		return err
	})
	eg.Go(func() error { return tr.run(egctx, status, display) })
	if err := eg.Wait(); err != nil {
		return nil, explainBuildError(ctx, err, tr, p)
	}
	res.phase("build", phase)
	if hand != nil {
		phase = time.Now()
		if err := hand.finish(ctx, dk, p.tag, out.Digest); err != nil {
			return nil, err
		}
		res.phase("load", phase)
	}
	layers.save()
	res.Cached, res.Steps = tr.counts()
	res.Ran = tr.ran()
	res.Digest = out.Digest
	if dk != nil {
		if img, err := dk.InspectImage(ctx, p.tag); err == nil {
			res.Size = img.Size
		}
	}
	return res, nil
}

// stepDigests lists the ops that count as steps: all but the sources. The
// base image is resolved rather than run, and BuildKit syncs a local
// directory (the build directory, the agent, uv) on every solve, sending
// only what changed, and never calls that cached.
func stepDigests(def [][]byte) []digest.Digest {
	var ops []digest.Digest
	for _, dt := range def {
		var op pb.Op
		if err := op.UnmarshalVT(dt); err == nil {
			if src := op.GetSource(); src != nil &&
				(strings.HasPrefix(src.Identifier, "docker-image://") || strings.HasPrefix(src.Identifier, "local://")) {
				continue
			}
		}
		ops = append(ops, digest.FromBytes(dt))
	}
	return ops
}

// explainBuildError turns a failed solve into what the user needs: which
// step of their file failed, the end of its output, and its exit code.
func explainBuildError(ctx context.Context, err error, tr *tracker, p *buildPlan) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var changed *builder.ChangedFileError
	if errors.As(err, &changed) {
		return changed
	}
	if stopped := builderStopped(err); stopped != nil {
		return stopped
	}
	var baseErr *builder.BaseImageError
	if errors.As(err, &baseErr) {
		return fmt.Errorf("%s: %w\n  hint: check the image name; on a machine without Docker Hub, run a registry mirror and pass --registry-mirror http://HOST:PORT (scripts/setup.sh starts one)", p.env.Base.Pos, err)
	}
	f := tr.failed()
	if f == nil {
		return err
	}
	var b strings.Builder
	name, where := splitPos(f.Name)
	if where != "" {
		b.WriteString(where + ": ")
	}
	fmt.Fprintf(&b, "step failed: %s", name)
	if f.ExitCode >= 0 {
		fmt.Fprintf(&b, " (exit code %d)", f.ExitCode)
	}
	if len(f.Tail) > 0 {
		fmt.Fprintf(&b, "\n  last %d lines of its output:\n", len(f.Tail))
		for _, l := range f.Tail {
			fmt.Fprintf(&b, "    %s\n", l)
		}
		b.WriteString("  hint: fix the package names or commands on the line named above, then run envd build again")
	}
	return errors.New(b.String())
}

// splitPos splits "name [file:line:col]", as compile names steps.
func splitPos(name string) (string, string) {
	if i := strings.LastIndex(name, " ["); i >= 0 && strings.HasSuffix(name, "]") {
		return name[:i], name[i+2 : len(name)-1]
	}
	return name, ""
}

func reportBuild(s streams, o *buildOptions, r *buildResult) error {
	if o.metadataFile != "" {
		data, _ := json.MarshalIndent(r, "", "  ")
		if err := os.WriteFile(o.metadataFile, append(data, '\n'), 0o644); err != nil {
			return err
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(s.err, "note: %s\n", n)
	}
	if r.Skipped {
		fmt.Fprintf(s.out, "%s is up to date (nothing changed since it was built), %.2fs\n", r.Image, r.Seconds)
		return nil
	}
	size := ""
	if r.Size > 0 {
		size = fmt.Sprintf(", %s", humanSize(r.Size))
	}
	fmt.Fprintf(s.out, "built %s%s in %.1fs, %d of %d steps cached\n", r.Image, size, r.Seconds, r.Cached, r.Steps)
	return nil
}

func humanSize(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}
