// Package compile turns an ir.Environment into a BuildKit LLB graph and the
// image config that goes with it. It is pure: no network, no daemon.
//
// The graph, for an environment with Python:
//
//	base ─▶ prep (apt cache config, sources) ─▶ python runtime (apt python3, venv)
//	                                               ├─▶ system packages (apt)   ─┐ Diff
//	                                               └─▶ python packages (pip)   ─┤ Diff
//	                             Merge(python runtime, diffs…) ◀────────────────┘
//	                                   ─▶ run / io.copy steps, in order
//
// System and Python packages are independent branches joined with Merge, so
// changing one never reruns the other, and a cold build runs them in parallel.
package compile

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/moby/buildkit/client/llb"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"envd.dev/envd/internal/ir"
)

// Paths inside the image.
const (
	VenvDir = "/opt/envd/venv"
	// UVLockPath and PipReportPath are where the image keeps what the
	// resolve step decided: every Python distribution and the file it came
	// from, as uv's pylock.toml or pip's installation report.
	UVLockPath    = "/opt/envd/pylock.toml"
	PipReportPath = "/opt/envd/pip-report.json"
	// mountDir holds build-time mounts of user files (requirements, wheels).
	mountDir = "/tmp/envd"
)

// Cache mount ids. The pip cache is shared by every environment on a
// builder: wheels are named by their ABI, so sharing is safe, and it is what
// makes a rebuild download nothing it has seen.
const (
	PipCacheID     = "envd-pip-cache"
	AptArchivesID  = "envd-apt-archives"
	aptListsPrefix = "envd-apt-lists-"
)

// LocalContext is the name of the build directory in the solve session.
const LocalContext = "context"

// DefaultPath is used when the base image config says nothing about PATH.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Options are the facts compile needs beyond the IR.
type Options struct {
	// Project names the environment (the build directory's name).
	Project string
	// EnvdVersion is recorded in the image labels.
	EnvdVersion string
	// Platform is the image's: of every source and step, of the downloads
	// (toolchains for its CPU) and of the image config. Required.
	Platform Platform
	// Base is the base image's config when it is known (resolved by the
	// builder); nil compiles without it, e.g. for --dry-run.
	Base *ocispecs.Image
	// BaseDigest pins the base image when it is known.
	BaseDigest string
	// BuildKey is recorded as a label so an unchanged build can be skipped.
	BuildKey string
	// Lock lists the resolved Python distributions, one layer each; nil
	// installs the whole set in one pip run (see Build).
	Lock []Distribution
	// Installer is the tool that resolved Lock and installs it:
	// InstallerUV or InstallerPip ("" is pip).
	Installer string
	// LayerOrder is Result.LayerOrder of the previous build of the same
	// environment: layers keep their places, new ones go on top.
	LayerOrder []string
	// VSCodeMarketplace is the Open VSX-compatible URL extensions come from;
	// "" means DefaultVSCodeMarketplace.
	VSCodeMarketplace string
	// MaxPackageLayers overrides DefaultMaxPackageLayers.
	MaxPackageLayers int
	// HostUV, when set, is the directory below the session's LocalUV that
	// holds uv's static binary at bin/uv: the steps use it rather than
	// fetching uv with pip, and the venv is created without pip, which goes
	// into a layer of its own beside the packages.
	HostUV string
	// CABundle mounts the session secret CABundleSecret into every step
	// that downloads, for networks that intercept TLS with their own CA.
	// It is never written into the image.
	CABundle bool
	// AgentFile is the name of the agent binary in the session's LocalAgent
	// directory, for dev images: "" is AgentBinary.
	AgentFile string
	// DevUser are the UID and GID the dev user envd is created with, and
	// that own what envd installs for it (home, venv, VS Code server,
	// toolchains without config.owner). The zero value is DevUID:DevUID.
	DevUser DevIDs
	// LocalID names this build's local sources (the build directory, the
	// agent, uv): a graph holds one vertex per source and name. Build sets
	// one, so the graphs it solves first share their steps with the
	// image's; "" gives each source a random one, as llb does.
	LocalID string
}

// DevIDs are the numeric user and group of the dev user. The zero value
// means the contract's DevUID for both; otherwise UID is at least 1 and GID
// at least 0, and a GID the base image already has keeps its group's name.
type DevIDs struct{ UID, GID int }

// ids are the UID and GID to use, the default for the zero value.
func (d DevIDs) ids() (uid, gid int) {
	if d == (DevIDs{}) {
		return DevUID, DevUID
	}
	return d.UID, d.GID
}

// String is "UID:GID", with the default filled in: as chown takes it, and
// what a build key records.
func (d DevIDs) String() string {
	uid, gid := d.ids()
	return fmt.Sprintf("%d:%d", uid, gid)
}

func (d DevIDs) check() error {
	if d == (DevIDs{}) {
		return nil
	}
	if d.UID < 1 || d.GID < 0 {
		return fmt.Errorf("compile: dev user %d:%d: the uid must be at least 1 and the gid at least 0 (the zero value means %d:%d)", d.UID, d.GID, DevUID, DevUID)
	}
	return nil
}

// CABundleSecret is the id of the CA bundle in the build session.
const CABundleSecret = "envd-ca-bundle"

// caBundlePath is where the CA bundle is mounted in build steps.
const caBundlePath = "/run/envd/ca-bundle.crt"

// trust returns the run options that make downloads trust the CA bundle.
func (c *compiler) trust() []llb.RunOption {
	if !c.opts.CABundle {
		return nil
	}
	opts := []llb.RunOption{llb.AddSecret(caBundlePath, llb.SecretID(CABundleSecret))}
	for _, k := range []string{"PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"} {
		opts = append(opts, llb.AddEnv(k, caBundlePath))
	}
	return opts
}

// Result is a marshalled graph plus the config of the image it produces.
type Result struct {
	Def    *llb.Definition
	Config ocispecs.Image
	// LayerOrder is the order the merged layers took; give it back as
	// Options.LayerOrder next time.
	LayerOrder []string
	// Installer is the tool that installs the Python packages, "" without any.
	Installer string
}

// Compile builds the LLB graph for env.
func Compile(ctx context.Context, env *ir.Environment, o Options) (*Result, error) {
	if err := o.DevUser.check(); err != nil {
		return nil, err
	}
	if err := checkPlatform(env, o.Platform); err != nil {
		return nil, err
	}
	return (&compiler{env: env, opts: o}).compile(ctx)
}

func (c *compiler) compile(ctx context.Context) (*Result, error) {
	st := c.graph()
	def, err := st.Marshal(ctx, c.constraint())
	if err != nil {
		return nil, fmt.Errorf("compile: %w", err)
	}
	cfg, err := c.imageConfig()
	if err != nil {
		return nil, err
	}
	return &Result{Def: def, Config: cfg, LayerOrder: c.layerOrder, Installer: c.installer()}, nil
}

type compiler struct {
	env        *ir.Environment
	opts       Options
	layerOrder []string // the merge's layer keys, bottom to top
	// resolved is the output of the resolve step that made opts.Lock, when
	// this build ran it: the image keeps its lock (lockLayer).
	resolved *llb.State
}

func (c *compiler) graph() llb.State {
	root := c.root()
	branches := c.lockFreeLayers(root) // independent changes on top of root
	if c.env.Python != nil {
		branches = append(branches, c.pythonPackages(root)...)
	}
	st := root
	switch {
	case len(branches) == 1 && !c.env.Base.Dev && c.resolved == nil:
		st = branches[0].st // nothing to merge
	case len(branches) > 0 || c.env.Base.Dev:
		var layers []layer
		for _, b := range branches {
			layers = append(layers, layer{b.key, llb.Diff(root, b.st), b.size})
		}
		if c.env.Base.Dev {
			layers = append(layers, layer{key: "agent", st: c.agentLayer()})
		}
		inputs := []llb.State{root}
		for _, l := range c.ordered(layers) {
			inputs = append(inputs, l.st)
		}
		if c.resolved != nil {
			// Always on top: it changes with every package, and Docker
			// would take every layer above it anew.
			inputs = append(inputs, c.lockLayer())
		}
		st = llb.Merge(inputs, named("merge independent stages"))
	}
	return c.steps(c.languageSteps(st))
}

// root is what every branch builds on: the base, apt's configuration, the
// Python runtime and the dev user.
func (c *compiler) root() llb.State {
	root := c.prepare(c.base())
	if c.env.Python != nil {
		root = c.pythonRuntime(root)
	}
	if c.env.Base.Dev {
		// Below every package layer, so adding a package never reruns it.
		root = c.devUser(root)
	}
	return root
}

// lockFreeLayers are the branches on root that do not depend on the Python
// lock: they can be built while the resolve step runs (see Build).
func (c *compiler) lockFreeLayers(root llb.State) []layer {
	var branches []layer
	if pkgs := c.systemPackages(); len(pkgs) > 0 {
		pos := c.env.Base.Pos
		if len(c.env.AptPackages) > 0 {
			pos = c.env.AptPackages[0].Pos
		}
		branches = append(branches, layer{key: "system:" + strings.Join(pkgs, " "), st: c.apt(root, pkgs, "system packages", pos)})
	}
	if c.env.Python != nil && c.venvWithoutPip() {
		branches = append(branches, c.pipLayer(root))
	}
	if c.env.Base.Dev {
		if ext, ok := c.vscodeExtensions(root); ok {
			branches = append(branches, ext)
		}
	}
	return branches
}

// layer is one input of the merge, with a key that says what it holds.
type layer struct {
	key  string
	st   llb.State
	size int64 // bytes it is known to download; 0 when unknown
}

// ordered puts the layers in the order they first appeared in earlier
// builds (Options.LayerOrder), new ones last. Docker knows a layer by
// everything below it, so a layer that is new or changed goes on top, and
// the layers below it stay as Docker has them: adding a package hands over
// one layer, not every layer above where its name sorts. New layers go
// largest first: when a small one changes later, only small ones sit above
// it.
func (c *compiler) ordered(layers []layer) []layer {
	rank := map[string]int{}
	for i, k := range c.opts.LayerOrder {
		rank[k] = i
	}
	sort.SliceStable(layers, func(i, j int) bool {
		ri, oki := rank[layers[i].key]
		rj, okj := rank[layers[j].key]
		switch {
		case oki && okj:
			return ri < rj
		case oki != okj:
			return oki
		case layers[i].size != layers[j].size:
			return layers[i].size > layers[j].size
		}
		return layers[i].key < layers[j].key
	})
	c.layerOrder = nil
	for _, l := range layers {
		c.layerOrder = append(c.layerOrder, l.key)
	}
	return layers
}

// base is the image with its config's env, so build steps see the same PATH
// and variables as the final container.
func (c *compiler) base() llb.State {
	ref := c.env.Base.Image
	if c.opts.BaseDigest != "" {
		ref = strings.SplitN(ref, "@", 2)[0] + "@" + c.opts.BaseDigest
	}
	st := llb.Image(ref, c.constraint(), named("base "+c.env.Base.Image))
	for _, kv := range c.baseEnv() {
		k, v, _ := strings.Cut(kv, "=")
		st = st.AddEnv(k, v)
	}
	st = st.AddEnv("PATH", c.path())
	return st
}

func (c *compiler) baseEnv() []string {
	if c.opts.Base == nil {
		return nil
	}
	return c.opts.Base.Config.Env
}

// path is the PATH of the build steps and the image: the venv first, then
// the user's extra_path, then the base image's PATH.
func (c *compiler) path() string {
	basePath := DefaultPath
	for _, kv := range c.baseEnv() {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok && v != "" {
			basePath = v
		}
	}
	var parts []string
	if c.env.Python != nil {
		parts = append(parts, VenvDir+"/bin")
	}
	parts = append(parts, c.languagePath()...)
	parts = append(parts, c.env.ExtraPath...)
	return strings.Join(append(parts, basePath), ":")
}

// prepare makes apt keep what it downloads (Docker's official images delete
// it after every install), and applies config.apt_source.
func (c *compiler) prepare(base llb.State) llb.State {
	fa := llb.Rm("/etc/apt/apt.conf.d/docker-clean", llb.WithAllowNotFound(true)).
		Mkfile("/etc/apt/apt.conf.d/99envd-keep-cache", 0o644,
			[]byte("Binary::apt::APT::Keep-Downloaded-Packages \"true\";\nAPT::Install-Recommends \"false\";\n"))
	if s := c.env.AptSource; s != nil {
		// Debian 12 and Ubuntu 24.04 keep their sources in deb822 files.
		fa = fa.Rm("/etc/apt/sources.list.d/*.sources", llb.WithAllowNotFound(true), llb.WithAllowWildcard(true)).
			Mkfile("/etc/apt/sources.list", 0o644, []byte(strings.TrimRight(s.Source, "\n")+"\n"))
	}
	return base.File(fa, named("configure apt"))
}

// apt installs packages with the archives and lists kept in cache mounts.
func (c *compiler) apt(st llb.State, pkgs []string, what string, pos ir.Pos) llb.State {
	install := "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends " + shellJoin(pkgs)
	// The lists are a cache mount: when another step of this build (or one
	// minutes ago) updated them, install straight away, and update only if
	// that fails (a package newer than the lists).
	script := fmt.Sprintf("if [ -n \"$(find %[1]s -mmin -%[2]d 2>/dev/null)\" ] && %[3]s; then :; else apt-get update -q && touch %[1]s && %[3]s; fi",
		aptUpdatedMarker, aptListsFreshMinutes, install)
	return st.Run(
		llb.Args([]string{"/bin/sh", "-c", script}),
		llb.AddMount("/var/cache/apt", llb.Scratch(), llb.AsPersistentCacheDir(AptArchivesID, llb.CacheMountLocked)),
		llb.AddMount("/var/lib/apt", llb.Scratch(), llb.AsPersistentCacheDir(c.aptListsID(), llb.CacheMountLocked)),
		named(fmt.Sprintf("%s: apt-get install %s%s", what, strings.Join(pkgs, " "), at(pos))),
	).Root()
}

// aptUpdatedMarker is touched, in the lists' cache mount, after each
// apt-get update; lists younger than aptListsFreshMinutes are used as they are.
const (
	aptUpdatedMarker     = "/var/lib/apt/envd-updated"
	aptListsFreshMinutes = 10
)

// aptListsID keys the package lists by base image: lists of one distribution
// are useless to another, while .deb archives are safe to share.
func (c *compiler) aptListsID() string {
	return aptListsPrefix + shortHash(strings.SplitN(c.env.Base.Image, "@", 2)[0])
}

// shellJoin quotes each word for sh that needs it. Names were validated
// already; quoting makes sure no name can ever be read as shell syntax.
func shellJoin(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		if w != "" && strings.Trim(w, safeShellChars) == "" {
			q[i] = w
		} else {
			q[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
}

const safeShellChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:@%+,"

func named(name string) llb.ConstraintsOpt { return llb.WithCustomName(name) }

// at formats a position for a vertex name, so a failing step names its line.
func at(pos ir.Pos) string {
	if pos.File == "" {
		return ""
	}
	return " [" + pos.String() + "]"
}

// steps applies run() and io.copy() in the order they were declared.
func (c *compiler) steps(st llb.State) llb.State {
	for _, kv := range sortedEnv(c.env.Environ) {
		st = st.AddEnv(kv[0], kv[1])
	}
	for _, s := range c.env.Steps {
		switch {
		case s.Run != nil:
			script := "set -e\n" + strings.Join(s.Run.Commands, "\n")
			opts := append(c.trust(),
				llb.Args([]string{"/bin/sh", "-c", script}),
				named(fmt.Sprintf("run: %s%s", summarize(s.Run.Commands), at(s.Pos))),
			)
			if s.Run.MountHost {
				opts = append(opts, llb.AddMount(c.projectDir(), c.context(nil), llb.Readonly), llb.Dir(c.projectDir()))
			}
			st = st.Run(opts...).Root()
		case s.Copy != nil:
			src := path.Clean(s.Copy.Source)
			from, what := c.context([]string{src}), src
			if img := s.Copy.Image; img != "" {
				// Like COPY --from: BuildKit pulls the image for its files only.
				from, what = llb.Image(img, c.constraint(), named("image "+img)), src+" from "+img
			}
			st = st.File(llb.Copy(from, src, s.Copy.Target, &llb.CopyInfo{
				CreateDestPath: true,
				FollowSymlinks: true,
				// A directory's contents land in target, like `cp -r dir/. target`.
				CopyDirContentsOnly: true,
			}), named(fmt.Sprintf("copy %s to %s%s", what, s.Copy.Target, at(s.Pos))))
		}
	}
	return st
}

func summarize(cmds []string) string {
	s := strings.Join(cmds, "; ")
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}

// context is the build directory, narrowed to paths when given, so a step
// reruns only when the files it reads change.
func (c *compiler) context(paths []string) llb.State {
	opts := []llb.LocalOption{llb.SharedKeyHint("envd-context-" + c.opts.Project)}
	if paths != nil {
		opts = append(opts, llb.FollowPaths(paths))
	}
	name := "build context"
	if len(paths) > 0 {
		name = "context: " + strings.Join(paths, ", ")
	}
	opts = append(opts, llb.WithCustomName(name))
	return c.local(LocalContext, opts...)
}

// local is a directory the session sends, by name.
func (c *compiler) local(name string, opts ...llb.LocalOption) llb.State {
	if c.opts.LocalID != "" {
		opts = append(opts, llb.LocalUniqueID(c.opts.LocalID))
	}
	return llb.Local(name, opts...)
}

// projectDir is where the build directory is mounted in build steps and,
// for dev environments, in the running container.
func (c *compiler) projectDir() string {
	return "/home/envd/" + c.opts.Project
}

// devIDs are the dev user's UID and GID for this build.
func (c *compiler) devIDs() (uid, gid int) { return c.opts.DevUser.ids() }
