package compile

import (
	"fmt"
	"strings"

	"github.com/moby/buildkit/client/llb"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"envd.dev/envd/internal/ir"
)

// downloads fetches io.http files into ir.DownloadDir, in order. BuildKit
// downloads them; with a checksum it verifies the file and keeps it by that
// checksum, so a rebuild needs no network.
func (c *compiler) downloads(st llb.State) llb.State {
	for _, d := range c.env.Downloads {
		name := d.Name()
		opts := []llb.HTTPOption{llb.Filename(name), llb.WithCustomName("download " + d.URL)}
		if d.Checksum != "" {
			opts = append(opts, llb.Checksum(digest.Digest(d.Checksum)))
		}
		copyOpts := []llb.CopyOption{&llb.CopyInfo{CreateDestPath: true}}
		if uid, gid, ok := c.owner(); ok {
			copyOpts = append(copyOpts, llb.WithUIDGID(uid, gid))
		}
		// A copy onto the image rather than a merged layer: a layer would
		// bring its own /home/envd and take the directory from the user.
		st = st.File(llb.Copy(llb.HTTP(d.URL, opts...), name, ir.DownloadDir+"/"+name, copyOpts...),
			named(fmt.Sprintf("io.http: %s to %s/%s%s", d.URL, ir.DownloadDir, name, at(d.Pos))))
	}
	return st
}

// OCI labels for config.repo.
const (
	LabelSource      = "org.opencontainers.image.source"
	LabelDescription = "org.opencontainers.image.description"
)

// languageConfig puts into the image config what the rest of envd's v1 API
// asks for: the languages' PATH and variables, config.entrypoint and
// config.repo. imageConfig calls it last.
func (c *compiler) languageConfig(img *ocispecs.Image) {
	env := envList(img.Config.Env)
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			env.set("PATH", withDirs(v, c.languagePath()))
		}
	}
	for _, kv := range c.languageEnv() {
		env.set(kv[0], kv[1])
	}
	img.Config.Env = env
	if ep := c.env.Entrypoint; ep != nil && !c.env.Base.Dev {
		img.Config.Entrypoint = append([]string(nil), ep.Args...)
		img.Config.Cmd = nil
	}
	if r := c.env.Repo; r != nil {
		if img.Config.Labels == nil {
			img.Config.Labels = map[string]string{}
		}
		img.Config.Labels[LabelSource] = r.URL
		if r.Description != "" {
			img.Config.Labels[LabelDescription] = r.Description
		}
	}
}
