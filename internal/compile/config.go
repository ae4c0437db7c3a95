package compile

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"envd.dev/envd/internal/ir"
)

// Image labels. LabelEnvironment carries the whole IR so `envd up` can run
// an image without its build file.
const (
	LabelVersion        = "dev.envd.version"
	LabelDigest         = "dev.envd.digest"
	LabelBuildKey       = "dev.envd.build-key"
	LabelBase           = "dev.envd.base"
	LabelPython         = "dev.envd.python"
	LabelAptPackages    = "dev.envd.apt-packages"
	LabelPythonPackages = "dev.envd.python-packages"
	LabelEnvironment    = "dev.envd.environment"
)

// imageConfig is the base image's config with envd's env, PATH and labels.
// BuildKit does not carry a State's env into the image, so it is given here.
func (c *compiler) imageConfig() (ocispecs.Image, error) {
	var img ocispecs.Image
	if c.opts.Base != nil {
		img = *c.opts.Base
		img.Config.Env = append([]string(nil), c.opts.Base.Config.Env...)
		img.Config.Labels = nil
	}
	img.OS, img.Architecture, img.Variant = "linux", c.opts.Platform.Arch, c.opts.Platform.variant()
	img.RootFS = ocispecs.RootFS{}
	img.History = nil

	env := envList(img.Config.Env)
	env.set("PATH", c.path())
	if c.env.Python != nil {
		env.set("VIRTUAL_ENV", VenvDir)
		env.set("PIP_DISABLE_PIP_VERSION_CHECK", "1")
	}
	for _, kv := range sortedEnv(c.env.Environ) {
		env.set(kv[0], kv[1])
	}
	img.Config.Env = env

	irJSON, err := json.Marshal(c.env)
	if err != nil {
		return img, err
	}
	python := ""
	if c.env.Python != nil {
		python = c.env.Python.Version
		if python == "" {
			python = ir.DistroPython(c.env.Base.Image)
		}
	}
	img.Config.Labels = map[string]string{
		LabelVersion:        c.opts.EnvdVersion,
		LabelDigest:         c.env.Digest(),
		LabelBase:           c.env.Base.Image,
		LabelPython:         python,
		LabelAptPackages:    strings.Join(c.env.AptNames(), ","),
		LabelPythonPackages: strings.Join(c.env.PythonNames(), ","),
		LabelEnvironment:    string(irJSON),
	}
	if c.opts.BuildKey != "" {
		img.Config.Labels[LabelBuildKey] = c.opts.BuildKey
	}
	if c.env.Base.Dev {
		// The agent is init, sshd and supervisor; `envd up` configures it.
		img.Config.Entrypoint = []string{AgentPath, "run"}
		img.Config.Cmd = nil
		img.Config.WorkingDir = DevHome
		img.Config.Labels[LabelDev] = "true"
		img.Config.ExposedPorts = map[string]struct{}{fmt.Sprintf("%d/tcp", SSHPort): {}}
	} else if len(img.Config.Cmd) == 0 && len(img.Config.Entrypoint) == 0 {
		img.Config.Cmd = []string{"/bin/bash"}
	}
	c.languageConfig(&img)
	return img, nil
}

type envList []string

func (e *envList) set(k, v string) {
	for i, kv := range *e {
		if strings.HasPrefix(kv, k+"=") {
			(*e)[i] = k + "=" + v
			return
		}
	}
	*e = append(*e, k+"="+v)
}

func sortedEnv(m map[string]string) [][2]string {
	out := make([][2]string, 0, len(m))
	for k, v := range m {
		out = append(out, [2]string{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:6])
}
