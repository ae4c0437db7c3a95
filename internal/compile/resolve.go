package compile

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"path"
	"sort"
	"strings"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/identity"
	"github.com/pelletier/go-toml/v2"
	"golang.org/x/sync/errgroup"

	"envd.dev/envd/internal/ir"
)

// DefaultMaxPackageLayers caps the Python package layers of an image: Docker
// cannot stack more than 127 layers, and the base has some already. Up to
// the cap each distribution gets its own layer; past it, distributions share
// layers by a hash of their name, so adding one reinstalls only its layer.
const DefaultMaxPackageLayers = 48

// ResolveFile is where the resolve step leaves the lock: uv's pylock.toml
// or pip's installation report (JSON).
const ResolveFile = "lock"

const reportDir = "/envd-resolve"

// Distribution is one resolved Python distribution and the exact file it
// installs from.
type Distribution struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	URL     string `json:"url"`
	SHA256  string `json:"sha256,omitempty"`
	// VCS and Commit are set for a requirement from version control.
	VCS    string `json:"vcs,omitempty"`
	Commit string `json:"commit,omitempty"`
	// Size of the file in bytes, when the lock says (uv's does, pip's not).
	Size int64 `json:"size,omitempty"`
}

// installArg is what `pip install --no-deps` is given for d: the file's
// URL, checked against its hash, so the step's cache key is the file.
func (d Distribution) installArg() string {
	switch {
	case d.VCS != "":
		return d.VCS + "+" + d.URL + "@" + d.Commit
	case d.SHA256 != "" && !strings.Contains(d.URL, "#"):
		return d.URL + "#sha256=" + d.SHA256
	}
	return d.URL
}

// requirementLine pins d in a requirements file: from an index by version
// and hash; a local file by its URL and hash; version control by commit.
func (d Distribution) requirementLine() string {
	switch {
	case d.VCS != "":
		return d.Name + " @ " + d.installArg()
	case d.SHA256 == "":
		return d.installArg()
	case strings.HasPrefix(d.URL, "file:"):
		file, _, _ := strings.Cut(d.URL, "#")
		return d.Name + " @ " + file + " --hash=sha256:" + d.SHA256
	case d.Version != "":
		return d.Name + "==" + d.Version + " --hash=sha256:" + d.SHA256
	}
	return d.installArg()
}

// ParseLock reads what the resolve step wrote, and says which installer
// made it: pip's report is JSON, uv's pylock.toml is TOML.
func ParseLock(data []byte) ([]Distribution, string, error) {
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '{' {
		dists, err := ParseReport(data)
		return dists, InstallerPip, err
	}
	dists, err := ParsePylock(data)
	return dists, InstallerUV, err
}

// ParsePylock reads a PEP 751 lock (uv pip compile --format pylock.toml)
// resolved for one interpreter: each package names the one file to install.
func ParsePylock(data []byte) ([]Distribution, error) {
	type file struct {
		URL    string            `toml:"url"`
		Path   string            `toml:"path"`
		Size   int64             `toml:"size"`
		Hashes map[string]string `toml:"hashes"`
	}
	var lock struct {
		Packages []struct {
			Name    string `toml:"name"`
			Version string `toml:"version"`
			Wheels  []file `toml:"wheels"`
			Sdist   *file  `toml:"sdist"`
			Archive *file  `toml:"archive"`
			VCS     *struct {
				Type     string `toml:"type"`
				URL      string `toml:"url"`
				CommitID string `toml:"commit-id"`
			} `toml:"vcs"`
			Directory *struct {
				Path string `toml:"path"`
			} `toml:"directory"`
		} `toml:"packages"`
	}
	if err := toml.Unmarshal(data, &lock); err != nil {
		return nil, fmt.Errorf("reading uv's lock (pylock.toml): %w", err)
	}
	dists := []Distribution{}
	for _, p := range lock.Packages {
		d := Distribution{Name: p.Name, Version: p.Version}
		var f *file
		switch {
		case len(p.Wheels) > 0:
			// Resolved for one interpreter, uv lists only the wheel it would install.
			f = &p.Wheels[0]
		case p.Archive != nil:
			f = p.Archive
		case p.Sdist != nil:
			f = p.Sdist
		case p.VCS != nil:
			d.VCS, d.URL, d.Commit = p.VCS.Type, p.VCS.URL, p.VCS.CommitID
		case p.Directory != nil:
			d.URL = "file://" + p.Directory.Path
		}
		if f != nil {
			d.URL, d.SHA256, d.Size = f.URL, f.Hashes["sha256"], f.Size
			if d.URL == "" && path.IsAbs(f.Path) {
				d.URL = "file://" + f.Path
			}
		}
		if d.Name == "" || d.URL == "" {
			return nil, fmt.Errorf("uv's lock lists a package without a name or a file it can be installed from: %q", p.Name)
		}
		dists = append(dists, d)
	}
	sortDistributions(dists)
	return dists, nil
}

func sortDistributions(dists []Distribution) {
	sort.Slice(dists, func(i, j int) bool { return strings.ToLower(dists[i].Name) < strings.ToLower(dists[j].Name) })
}

// ParseReport reads pip's `--report` JSON into the distributions to install.
func ParseReport(data []byte) ([]Distribution, error) {
	var r struct {
		Install []struct {
			DownloadInfo struct {
				URL         string `json:"url"`
				ArchiveInfo *struct {
					Hash   string            `json:"hash"`
					Hashes map[string]string `json:"hashes"`
				} `json:"archive_info"`
				VCSInfo *struct {
					VCS      string `json:"vcs"`
					CommitID string `json:"commit_id"`
				} `json:"vcs_info"`
			} `json:"download_info"`
			Metadata struct {
				Name    string `json:"name"`
				Version string `json:"version"`
			} `json:"metadata"`
		} `json:"install"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("reading pip's installation report: %w", err)
	}
	dists := []Distribution{}
	for _, in := range r.Install {
		d := Distribution{Name: in.Metadata.Name, Version: in.Metadata.Version, URL: in.DownloadInfo.URL}
		if a := in.DownloadInfo.ArchiveInfo; a != nil {
			d.SHA256 = a.Hashes["sha256"]
			if h, ok := strings.CutPrefix(a.Hash, "sha256="); ok && d.SHA256 == "" {
				d.SHA256 = h
			}
		}
		if v := in.DownloadInfo.VCSInfo; v != nil {
			d.VCS, d.Commit = v.VCS, v.CommitID
		}
		if d.Name == "" || d.URL == "" {
			return nil, fmt.Errorf("pip's installation report lists a distribution without a name or URL: %+v", in)
		}
		dists = append(dists, d)
	}
	sortDistributions(dists)
	return dists, nil
}

// groupDistributions gives each distribution its own group while there are
// at most max; beyond that it buckets them by a hash of the name, which
// stays the same when other distributions come and go.
func groupDistributions(dists []Distribution, max int) [][]Distribution {
	if len(dists) <= max {
		groups := make([][]Distribution, len(dists))
		for i, d := range dists {
			groups[i] = []Distribution{d}
		}
		return groups
	}
	buckets := make([][]Distribution, max)
	for _, d := range dists {
		h := fnv.New32a()
		h.Write([]byte(strings.ToLower(d.Name)))
		i := int(h.Sum32() % uint32(max))
		buckets[i] = append(buckets[i], d)
	}
	var groups [][]Distribution
	for _, b := range buckets {
		if len(b) > 0 {
			groups = append(groups, b)
		}
	}
	return groups
}

// resolveState resolves the whole set without installing anything and
// leaves the lock in ResolveFile: uv's pylock.toml when the index has uv
// (it reads PEP 658 metadata and fetches no wheel), else pip's
// installation report (pip before 25.3 fetches every wheel to resolve).
func (c *compiler) resolveState(runtime llb.State) (llb.State, bool) {
	set, ok := c.pipSet()
	if !ok {
		return llb.State{}, false
	}
	out := reportDir + "/" + ResolveFile
	uvArgs := c.uvCommand(true, "pip", "compile", "--quiet", "--python", VenvDir+"/bin/python",
		"--format", "pylock.toml", "-o", reportDir+"/pylock.toml", reportDir+"/requirements.in")
	uv := fmt.Sprintf("printf '%%s\\n' %s > %s/requirements.in && %s && mv %s/pylock.toml %s",
		shellJoin(set.lines()), reportDir, uvArgs, reportDir, out)
	// --report needs pip 22.2; older distributions ship older ones.
	upgrade := fmt.Sprintf(`%s/bin/python -c 'import pip, sys; sys.exit(tuple(int(x) for x in pip.__version__.split(".")[:2]) < (22, 2))' || %s`,
		VenvDir, shellJoin(c.pipCommand("--quiet", "pip>=22.2")))
	pip := upgrade + " && " + shellJoin(c.pipPackageCommand(true, append([]string{"--dry-run", "--ignore-installed", "--quiet", "--report", out}, set.args...)...))
	script := fmt.Sprintf("if [ -x %s ]; then %s%s; else %s; fi", uvBinary, uvIndexEnv, uv, pip)
	opts := append(c.trust(), c.pipCache(), c.uvCache(), c.uvTool(runtime), llb.Args([]string{"/bin/sh", "-c", script}),
		named(fmt.Sprintf("python packages: resolve %s%s", strings.Join(set.what, " "), at(set.pos))))
	opts = append(opts, c.uvIndexProxy()...)
	run := runtime.Run(append(opts, set.mounts...)...)
	return run.AddMount(reportDir, llb.Scratch()), true
}

// Solver runs the graphs a build solves on the builder before its image's.
type Solver struct {
	// Read solves def and returns the file at path in its result.
	Read func(ctx context.Context, def *llb.Definition, path string) ([]byte, error)
	// Warm, when set, solves def for the builder's cache alone: the image's
	// solve then finds those steps done.
	Warm func(ctx context.Context, def *llb.Definition) error
}

// Build compiles env in two passes when it has Python packages: it first
// resolves the full set (a lock), then installs each distribution in its own
// layer. The resolve runs on the builder through s.Read; the branches that
// do not need the lock (apt's packages, pip, editor extensions) build
// through s.Warm meanwhile, so a slow resolve (an index without metadata,
// where it downloads whole wheels) is not followed by them.
func Build(ctx context.Context, env *ir.Environment, o Options, s Solver) (*Result, error) {
	if err := o.DevUser.check(); err != nil {
		return nil, err
	}
	// Before the resolve step runs on the builder.
	if err := checkPlatform(env, o.Platform); err != nil {
		return nil, err
	}
	if o.LocalID == "" {
		o.LocalID = identity.NewID()
	}
	c := &compiler{env: env, opts: o}
	if env.Python == nil {
		return c.compile(ctx)
	}
	st, ok := c.resolveState(c.pythonRuntime(c.prepare(c.base())))
	if !ok {
		return c.compile(ctx)
	}
	def, err := st.Marshal(ctx, c.constraint())
	if err != nil {
		return nil, fmt.Errorf("compile: %w", err)
	}
	var defs []*llb.Definition
	if s.Warm != nil {
		for _, b := range c.lockFreeLayers(c.root()) {
			d, err := b.st.Marshal(ctx, c.constraint())
			if err != nil {
				return nil, fmt.Errorf("compile: %w", err)
			}
			defs = append(defs, d)
		}
	}
	// The first error stops the rest: a failed apt step would fail the
	// image's solve all the same.
	eg, egctx := errgroup.WithContext(ctx)
	var data []byte
	eg.Go(func() error {
		var err error
		data, err = s.Read(egctx, def, ResolveFile)
		return err
	})
	for _, d := range defs {
		eg.Go(func() error { return s.Warm(egctx, d) })
	}
	if err := eg.Wait(); err != nil {
		return nil, err
	}
	if c.opts.Lock, c.opts.Installer, err = ParseLock(data); err != nil {
		return nil, err
	}
	c.resolved = &st
	return c.compile(ctx)
}

// lockLayer is the resolve step's lock, in a layer of its own: the user
// sees what was installed from where, and the image's graph holds the
// resolve step, so a team cache (mode=max) carries its result and a
// teammate's builder need not resolve again (on an index without metadata
// that downloads every wheel).
func (c *compiler) lockLayer() llb.State {
	dest := PipReportPath
	if c.opts.Installer == InstallerUV {
		dest = UVLockPath
	}
	return llb.Scratch().File(llb.Copy(*c.resolved, ResolveFile, dest, &llb.CopyInfo{CreateDestPath: true}),
		named("python packages: the lock at "+dest))
}
