package compile

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"sort"
	"strings"

	"github.com/moby/buildkit/client/llb"

	"envd.dev/envd/internal/ir"
)

// DefaultMaxPackageLayers caps the Python package layers of an image: Docker
// cannot stack more than 127 layers, and the base has some already. Up to
// the cap each distribution gets its own layer; past it, distributions share
// layers by a hash of their name, so adding one reinstalls only its layer.
const DefaultMaxPackageLayers = 48

// ReportFile is where the resolve step leaves pip's installation report.
const ReportFile = "report.json"

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
	sort.Slice(dists, func(i, j int) bool { return strings.ToLower(dists[i].Name) < strings.ToLower(dists[j].Name) })
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

// resolveState runs pip's resolver over the whole set without installing
// anything and keeps its report. The wheels it fetches land in the shared
// pip cache, where the install steps find them.
func (c *compiler) resolveState(runtime llb.State) (llb.State, bool) {
	set, ok := c.pipSet()
	if !ok {
		return llb.State{}, false
	}
	// --report needs pip 22.2; older distributions ship older ones.
	upgrade := fmt.Sprintf(`%s/bin/python -c 'import pip, sys; sys.exit(tuple(int(x) for x in pip.__version__.split(".")[:2]) < (22, 2))' || %s`,
		VenvDir, shellJoin(c.pipCommand("--quiet", "pip>=22.2")))
	resolve := shellJoin(c.pipCommand(append([]string{"--dry-run", "--ignore-installed", "--quiet", "--report", reportDir + "/" + ReportFile}, set.args...)...))
	opts := append(c.trust(), c.pipCache(), llb.Args([]string{"/bin/sh", "-c", upgrade + " && " + resolve}),
		named(fmt.Sprintf("python packages: resolve %s%s", strings.Join(set.what, " "), at(set.pos))))
	run := runtime.Run(append(opts, set.mounts...)...)
	return run.AddMount(reportDir, llb.Scratch()), true
}

// ReadFunc solves def and returns the file at path in its result.
type ReadFunc func(ctx context.Context, def *llb.Definition, path string) ([]byte, error)

// Build compiles env in two passes when it has Python packages: it first
// resolves the full set (a lock), then installs each distribution in its own
// layer. read runs the resolve step on the builder.
func Build(ctx context.Context, env *ir.Environment, o Options, read ReadFunc) (*Result, error) {
	c := &compiler{env: env, opts: o}
	if env.Python != nil {
		if st, ok := c.resolveState(c.pythonRuntime(c.prepare(c.base()))); ok {
			def, err := st.Marshal(ctx, llb.LinuxAmd64)
			if err != nil {
				return nil, fmt.Errorf("compile: %w", err)
			}
			data, err := read(ctx, def, ReportFile)
			if err != nil {
				return nil, err
			}
			if o.Lock, err = ParseReport(data); err != nil {
				return nil, err
			}
		}
	}
	return Compile(ctx, env, o)
}
