package compile

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/moby/buildkit/solver/pb"
	digest "github.com/opencontainers/go-digest"

	"envd.dev/envd/internal/ir"
)

// Plan compiles env and describes the graph for people (envd build
// --dry-run): the steps in order, the cache mount each step uses, and the
// branches that run in parallel before a merge. Nothing is built.
func Plan(ctx context.Context, env *ir.Environment, o Options) (string, error) {
	res, err := Compile(ctx, env, o)
	if err != nil {
		return "", err
	}
	p := &planner{ops: map[digest.Digest]*pb.Op{}, names: map[digest.Digest]string{}, step: map[digest.Digest]int{},
		caches: map[string]*cacheUse{}}
	var last digest.Digest
	for _, dt := range res.Def.Def {
		var op pb.Op
		if err := op.UnmarshalVT(dt); err != nil {
			return "", err
		}
		last = digest.FromBytes(dt)
		p.ops[last] = &op
	}
	for d, m := range res.Def.Metadata {
		p.names[d] = m.Description["llb.customname"]
	}
	// The last op only points at the result.
	if term := p.ops[last]; term != nil && term.Op == nil && len(term.Inputs) == 1 {
		last = digest.Digest(term.Inputs[0].Digest)
	}
	fmt.Fprintf(&p.out, "Plan for %s (%s); nothing is built.\n\n", o.Project, env.Base.Image)
	p.visit(last, "")
	p.cacheSummary()
	if c := (&compiler{env: env, opts: o}); c.installer() != "" && o.Lock == nil {
		p.out.WriteString("\nPython packages show as one step: the build first resolves them together (with uv, which envd\n" +
			"fetches from the package index once; pip when the index has none), then installs each distribution in a\n" +
			"layer of its own, and pip goes into the venv beside them.\n")
	}
	return p.out.String(), nil
}

type planner struct {
	ops    map[digest.Digest]*pb.Op
	names  map[digest.Digest]string
	step   map[digest.Digest]int // printed ops, by step number
	n      int
	caches map[string]*cacheUse
	out    strings.Builder
}

type cacheUse struct {
	dest, sharing string
	steps         []int
}

// visit prints d after everything it needs (that was not printed yet).
// A merge's first input is the main line; its other inputs are branches,
// built independently of each other, so in parallel.
func (p *planner) visit(d digest.Digest, indent string) {
	if _, done := p.step[d]; done {
		return
	}
	op := p.ops[d]
	if op == nil {
		return
	}
	inputs := op.Inputs
	if m := op.GetMerge(); m != nil && len(inputs) > 1 {
		p.visit(digest.Digest(inputs[0].Digest), indent)
		fmt.Fprintf(&p.out, "%s     in parallel, then merged:\n", indent)
		for i, in := range inputs[1:] {
			fmt.Fprintf(&p.out, "%s     %c)\n", indent, 'a'+rune(i%26))
			p.visit(digest.Digest(in.Digest), indent+"        ")
		}
	} else {
		for _, in := range inputs {
			p.visit(digest.Digest(in.Digest), indent)
		}
	}
	if op.GetDiff() != nil {
		p.step[d] = 0 // a diff only takes the branch's changes: no step of its own
		return
	}
	p.n++
	p.step[d] = p.n
	fmt.Fprintf(&p.out, "%s%3d  %s\n", indent, p.n, p.describe(d, op))
	if e := op.GetExec(); e != nil {
		p.mounts(e, indent)
	}
}

// describe names an op: its step name, else what it is.
func (p *planner) describe(d digest.Digest, op *pb.Op) string {
	name := p.names[d]
	switch x := op.Op.(type) {
	case *pb.Op_Source:
		id := x.Source.Identifier
		switch {
		case strings.HasPrefix(id, "docker-image://"):
			return "image " + strings.TrimPrefix(id, "docker-image://")
		case strings.HasPrefix(id, "local://"):
			what := "build directory"
			if paths := x.Source.Attrs[pb.AttrFollowPaths]; paths != "" {
				what += " " + paths
			}
			if id == "local://"+LocalAgent {
				what = "envd-agent binary"
			}
			return "read " + what
		case strings.HasPrefix(id, "http://"), strings.HasPrefix(id, "https://"):
			s := "download " + id
			if sum := x.Source.Attrs[pb.AttrHTTPChecksum]; sum != "" {
				s += " (verified, cached by " + sum + ")"
			}
			return s
		}
		return id
	case *pb.Op_Exec:
		if name == "" {
			name = strings.Join(x.Exec.Meta.Args, " ")
		}
	case *pb.Op_Merge:
		if name == "" {
			name = "merge"
		}
	}
	if name == "" {
		name = "file operation"
	}
	return name
}

// mounts prints the cache and secret mounts of a step.
func (p *planner) mounts(e *pb.ExecOp, indent string) {
	for _, m := range e.Mounts {
		switch m.MountType {
		case pb.MountType_CACHE:
			sharing := strings.ToLower(m.CacheOpt.Sharing.String())
			fmt.Fprintf(&p.out, "%s       cache %s = %s (%s)\n", indent, m.Dest, m.CacheOpt.ID, sharing)
			c := p.caches[m.CacheOpt.ID]
			if c == nil {
				c = &cacheUse{dest: m.Dest, sharing: sharing}
				p.caches[m.CacheOpt.ID] = c
			}
			c.steps = append(c.steps, p.n)
		case pb.MountType_SECRET:
			fmt.Fprintf(&p.out, "%s       secret %s at %s (not stored in the image)\n", indent, m.SecretOpt.ID, m.Dest)
		}
	}
}

// cacheSummary lists the cache mounts: what survives between builds.
func (p *planner) cacheSummary() {
	if len(p.caches) == 0 {
		return
	}
	p.out.WriteString("\nCache mounts (kept by the builder between builds, shared by every environment that names them):\n")
	var ids []string
	for id := range p.caches {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	w := tabwriter.NewWriter(&p.out, 0, 0, 2, ' ', 0)
	for _, id := range ids {
		c := p.caches[id]
		steps := make([]string, len(c.steps))
		for i, s := range c.steps {
			steps[i] = fmt.Sprint(s)
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\tsteps %s\n", id, c.dest, c.sharing, strings.Join(steps, ", "))
	}
	w.Flush()
}
