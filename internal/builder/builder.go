// Package builder runs a compiled environment on a BuildKit daemon and
// exports the result. It never prints: progress goes to a status channel.
package builder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
	"github.com/moby/buildkit/session/secrets/secretsprovider"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/tonistiigi/fsutil"

	"envd.dev/envd/internal/compile"
)

// CompileFunc compiles the graph once the base image's config is known. It
// may solve preliminary graphs with solver (e.g. to resolve Python packages).
type CompileFunc func(ctx context.Context, base *ocispecs.Image, baseDigest string, solver compile.Solver) (*compile.Result, error)

// LoadFunc consumes the docker exporter's tar stream, e.g. `docker load`.
type LoadFunc func(ctx context.Context, r io.Reader) error

// Request is one build.
type Request struct {
	BaseImage string
	// Platform is the image's: the base image is resolved for it.
	Platform   ocispecs.Platform
	Compile    CompileFunc
	ContextDir string // the build directory, served to the solve as compile.LocalContext
	// Locals are more directories the solve may read, by name: the agent
	// binary for dev images (compile.LocalAgent), the host's uv
	// (compile.LocalUV).
	Locals map[string]string
	Export Export
	Load   LoadFunc // required for ExportDocker
	// Status receives BuildKit's progress; Build closes it.
	Status chan *client.SolveStatus
	// Secrets are offered to build steps by id (never stored in the image).
	Secrets map[string][]byte
	// RegistryAuth are credentials BuildKit uses for registries, by host
	// (e.g. the hand-over registry it pushes to); Credentials, when set,
	// answers for any other host (the user's Docker login).
	RegistryAuth map[string]Credentials
	Credentials  func(host string) (Credentials, bool)
	// CacheImports and CacheExports are BuildKit cache sources and
	// destinations (a team's registry cache: type=registry,ref=...).
	CacheImports, CacheExports []client.CacheOptionsEntry
	// BeforeExport, when set, is called once the image is built and about
	// to be exported.
	BeforeExport func()
}

// Result describes the exported image.
type Result struct {
	// Digest of the image config or manifest, as BuildKit reports it.
	Digest string
	Config ocispecs.Image
}

// Build resolves the base image, compiles, solves and exports, all in one
// BuildKit session.
func Build(ctx context.Context, c *client.Client, req Request) (*Result, error) {
	if req.Platform.Architecture == "" {
		return nil, errors.New("builder: no platform given")
	}
	ctxFS, err := newCheckedFS(req.ContextDir)
	if err != nil {
		return nil, fmt.Errorf("build directory %s: %w", req.ContextDir, err)
	}
	export, finish, err := exportEntry(ctx, req)
	if err != nil {
		return nil, err
	}
	mounts := map[string]fsutil.FS{compile.LocalContext: ctxFS}
	checked := []*checkedFS{ctxFS}
	for name, dir := range req.Locals {
		fs, err := newCheckedFS(dir)
		if err != nil {
			return nil, fmt.Errorf("%s directory %s: %w", name, dir, err)
		}
		mounts[name] = fs
		checked = append(checked, fs)
	}
	// sendErr is the first file that changed while it was sent: such a
	// build must fail before anything is exported.
	sendErr := func() error {
		for _, fs := range checked {
			if err := fs.Err(); err != nil {
				return err
			}
		}
		return nil
	}
	opt := client.SolveOpt{
		Exports:     []client.ExportEntry{export},
		LocalMounts: mounts,
		// A stable key lets BuildKit send only what changed in the directory.
		SharedKey:    "envd:" + req.ContextDir,
		CacheImports: req.CacheImports,
		CacheExports: req.CacheExports,
		// Not nil: the client copies the cache options' attributes into it.
		FrontendAttrs: map[string]string{},
	}
	if len(req.Secrets) > 0 {
		opt.Session = append(opt.Session, secretsprovider.FromMap(req.Secrets))
	}
	if len(req.RegistryAuth) > 0 || req.Credentials != nil {
		opt.Session = append(opt.Session, &registryAuth{hosts: req.RegistryAuth, lookup: req.Credentials})
	}
	var cfg ocispecs.Image
	resp, err := c.Build(ctx, opt, "envd", func(ctx context.Context, gw gateway.Client) (*gateway.Result, error) {
		_, dgst, raw, err := gw.ResolveImageConfig(ctx, req.BaseImage, sourceresolver.Opt{
			LogName:  "resolve " + req.BaseImage,
			ImageOpt: &sourceresolver.ResolveImageOpt{Platform: &req.Platform},
		})
		if err != nil {
			return nil, &BaseImageError{Image: req.BaseImage, Err: err}
		}
		var base ocispecs.Image
		if err := json.Unmarshal(raw, &base); err != nil {
			return nil, fmt.Errorf("base image %s: bad config: %w", req.BaseImage, err)
		}
		solve := func(ctx context.Context, def *llb.Definition) (*gateway.Result, error) {
			return gw.Solve(ctx, gateway.SolveRequest{Definition: def.ToPB(), Evaluate: true, CacheImports: gatewayCache(req.CacheImports)})
		}
		solver := compile.Solver{
			Read: func(ctx context.Context, def *llb.Definition, path string) ([]byte, error) {
				r, err := solve(ctx, def)
				if err != nil {
					return nil, err
				}
				ref, err := r.SingleRef()
				if err != nil {
					return nil, err
				}
				return ref.ReadFile(ctx, gateway.ReadRequest{Filename: path})
			},
			Warm: func(ctx context.Context, def *llb.Definition) error {
				_, err := solve(ctx, def)
				return err
			},
		}
		res, err := req.Compile(ctx, &base, dgst.String(), solver)
		if err != nil {
			return nil, err
		}
		cfg = res.Config
		out, err := solve(ctx, res.Def)
		if serr := sendErr(); serr != nil {
			return nil, serr
		}
		if err != nil {
			return nil, err
		}
		cfgJSON, err := json.Marshal(res.Config)
		if err != nil {
			return nil, err
		}
		out.AddMeta(exptypes.ExporterImageConfigKey, cfgJSON)
		if req.BeforeExport != nil {
			req.BeforeExport()
		}
		return out, nil
	}, req.Status)
	if serr := sendErr(); serr != nil {
		err = serr
	}
	if ferr := finish(err); err == nil {
		err = ferr
	}
	if err != nil {
		return nil, err
	}
	r := &Result{Config: cfg, Digest: resp.ExporterResponse[exptypes.ExporterImageDigestKey]}
	if r.Digest == "" {
		r.Digest = resp.ExporterResponse[exptypes.ExporterImageConfigDigestKey]
	}
	return r, nil
}

// gatewayCache is the cache sources again, for the solves the build makes
// itself: those of the session do not reach them.
func gatewayCache(entries []client.CacheOptionsEntry) []gateway.CacheOptionsEntry {
	var out []gateway.CacheOptionsEntry
	for _, e := range entries {
		out = append(out, gateway.CacheOptionsEntry{Type: e.Type, Attrs: e.Attrs})
	}
	return out
}

// BaseImageError is a base image the builder could not resolve.
type BaseImageError struct {
	Image string
	Err   error
}

func (e *BaseImageError) Error() string {
	return fmt.Sprintf("cannot resolve base image %s: %v", e.Image, e.Err)
}

func (e *BaseImageError) Unwrap() error { return e.Err }

// exportEntry builds the exporter for req.Export, and a finish function to
// call with the solve's error once it returns: it waits for the consumer of
// the stream and commits or removes what was written.
func exportEntry(ctx context.Context, req Request) (client.ExportEntry, func(error) error, error) {
	e := req.Export
	attrs := map[string]string{}
	for k, v := range e.Attrs {
		attrs[k] = v
	}
	if e.Name != "" {
		attrs["name"] = e.Name
	}
	noop := func(error) error { return nil }
	switch e.Type {
	case ExportDocker:
		if e.Dest != "" {
			// A docker archive on disk, for `docker load -i` elsewhere.
			return fileExport(client.ExporterDocker, attrs, e.Dest)
		}
		if req.Load == nil {
			return client.ExportEntry{}, nil, errors.New("builder: docker export needs a Load function")
		}
		// Layers stay uncompressed: the stream goes straight into a local
		// docker load, where gzip would only burn CPU.
		setDefault(attrs, "compression", "uncompressed")
		return dockerExport(ctx, attrs, req.Load)
	case ExportOCI:
		setDefault(attrs, "compression", "uncompressed")
		return fileExport(client.ExporterOCI, attrs, e.Dest)
	case ExportImage:
		if e.Push {
			attrs["push"] = "true"
		}
		return client.ExportEntry{Type: client.ExporterImage, Attrs: attrs}, noop, nil
	}
	return client.ExportEntry{}, nil, fmt.Errorf("unknown export type %q", e.Type)
}

func setDefault(m map[string]string, k, v string) {
	if _, ok := m[k]; !ok {
		m[k] = v
	}
}

// dockerExport streams the docker exporter's tar into load through a pipe:
// no temporary file, and nothing is tagged unless the whole stream loads.
func dockerExport(ctx context.Context, attrs map[string]string, load LoadFunc) (client.ExportEntry, func(error) error, error) {
	var (
		wg      sync.WaitGroup
		loadErr error
		started bool
	)
	entry := client.ExportEntry{
		Type:  client.ExporterDocker,
		Attrs: attrs,
		Output: func(map[string]string) (io.WriteCloser, error) {
			pr, pw := io.Pipe()
			started = true
			wg.Add(1)
			go func() {
				defer wg.Done()
				loadErr = load(ctx, pr)
				// Unblock the exporter if load stopped reading early.
				pr.CloseWithError(errors.Join(loadErr, errors.New("image load ended")))
			}()
			return pw, nil
		},
	}
	finish := func(solveErr error) error {
		wg.Wait()
		if started && loadErr != nil {
			return fmt.Errorf("loading the image into Docker: %w", loadErr)
		}
		return nil
	}
	return entry, finish, nil
}

// fileExport writes to a temporary file beside dest, renamed into place only
// when the export succeeds.
func fileExport(exporter string, attrs map[string]string, dest string) (client.ExportEntry, func(error) error, error) {
	abs, err := filepath.Abs(dest)
	if err != nil {
		return client.ExportEntry{}, nil, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(abs), "."+filepath.Base(abs)+".*.tmp")
	if err != nil {
		return client.ExportEntry{}, nil, fmt.Errorf("cannot write %s: %w", dest, err)
	}
	entry := client.ExportEntry{
		Type:   exporter,
		Attrs:  attrs,
		Output: func(map[string]string) (io.WriteCloser, error) { return tmp, nil },
	}
	finish := func(solveErr error) error {
		tmp.Close()
		if solveErr != nil {
			os.Remove(tmp.Name())
			return nil
		}
		if err := os.Rename(tmp.Name(), abs); err != nil {
			os.Remove(tmp.Name())
			return err
		}
		return nil
	}
	return entry, finish, nil
}
