package lang

import (
	"path"
	"regexp"

	"github.com/distribution/reference"
	"go.starlark.net/starlark"

	"envd.dev/envd/internal/contract"
	"envd.dev/envd/internal/ir"
)

// ioModule is io.*: files from the host. copy's parameters were
// host_path/envd_path in envd v1 and src/dest in v0; all are accepted.
var ioModule = newModule("io", "Files from the host or the network.",
	member{name: "copy", h: ioCopy, doc: "Copy a file or directory from the build directory, or from another image like Dockerfile's COPY --from, into the image (a build step, in order with run()).", params: []string{
		`source|host_path|src:str  # relative to the build directory; with image, an absolute path in that image; a directory's contents are copied`,
		`target|envd_path|dest:str  # the path in the image`,
		`image?:str|none=None  # an image to copy from, e.g. "mambaorg/micromamba:1.0.0", pulled when the image is built (a tag that moves is picked up by envd build --force); the files keep their owner from it, where the original envd gave them to the environment's owner`,
	}},
	member{name: "mount", h: runtimeMount, doc: "runtime.mount under envd v0's name.", params: []string{
		`host_path|src:str`, `envd_path|dest:str`,
	}},
	member{name: "http", h: ioHTTP, doc: "Download a file into /home/envd/extra_source when the image is built.", params: []string{
		`url:str`,
		`checksum?:str|none=None  # "sha256:" and the hex digest; BuildKit verifies it and, with it, never downloads the file again`,
		`filename?:str|none=None  # default: the last part of the URL`,
	}},
)

// ioCopy adds a build step copying from the build context, or from an
// image, into the image.
func ioCopy(c *call, a args) error {
	step := &ir.CopyStep{Source: a.str("source", ""), Target: a.str("target", "")}
	if image := a.str("image", ""); image != "" {
		// Checked in the full form BuildKit gets: "Org/tool" is docker.io/Org/tool there.
		step.Image = ir.NormalizeImage(image)
		if _, err := reference.ParseNamed(step.Image); err != nil {
			return c.errorf(`give an image reference such as "mambaorg/micromamba:1.0.0" or "ghcr.io/org/tool@sha256:..."`,
				"io.copy: image %q is not an image reference: %v", image, err)
		}
	}
	c.s.env.Steps = append(c.s.env.Steps, ir.Step{Copy: step, Pos: c.pos})
	return nil
}

var bareSHA256 = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)

func ioHTTP(c *call, a args) error {
	sum := a.str("checksum", "")
	if bareSHA256.MatchString(sum) {
		sum = "sha256:" + sum // what sha256sum prints
	}
	c.s.env.Downloads = append(c.s.env.Downloads, ir.Download{
		URL: a.str("url", ""), Checksum: sum, Filename: a.str("filename", ""), Pos: c.pos,
	})
	return nil
}

// DataDir is where data.envd's datasets live on the host; "~" is expanded
// where the container starts, like runtime.mount's paths.
const DataDir = "~/.local/share/envd/data"

var dataName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.\-]*$`)

// dataModule is data.*: datasets managed by envd.
var dataModule = newModule("data", "Datasets managed by envd, and where libraries cache theirs.",
	member{name: "envd", v: dataEnvd, returns: "str", doc: "The host directory of a dataset managed by envd, for runtime.mount(host_path=data.envd(\"mnist\"), ...).", params: []string{
		`name:str  # the dataset's name`,
	}},
	member{name: "path", sub: dataPathModule, doc: "Where libraries cache their datasets inside the environment, for runtime.mount(envd_path=...)."},
)

// dataPathModule is data.path.*. The original envd's values are "~/..."; a
// mount's target must be absolute here, so they are in the dev user's home,
// which is /home/envd as in the original.
var dataPathModule = func() *module {
	m := newModule("data.path", "Where libraries cache their datasets inside the environment.",
		member{name: "huggingface", value: path.Join(contract.DevHome, ".cache/huggingface"), doc: `Hugging Face's cache (datasets, models) in the dev user's home: the original envd's "~/.cache/huggingface", absolute because a mount's target must be.`},
		member{name: "dgl", value: path.Join(contract.DevHome, ".dgl"), doc: `DGL's dataset directory in the dev user's home: the original envd's "~/.dgl", absolute because a mount's target must be.`},
	)
	m.noun = "path"
	return m
}()

func dataEnvd(c *call, a args) (starlark.Value, error) {
	name := a.str("name", "")
	if !dataName.MatchString(name) {
		return nil, c.errorf(`e.g. data.envd("mnist")`, "data.envd: %q is not a dataset name (letters, digits and _ . -)", name)
	}
	return starlark.String(path.Join(DataDir, name)), nil
}
