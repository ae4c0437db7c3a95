package buildkitd

import (
	"fmt"
	"os"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// A builder in a cluster (package kube runs it) is a pod of the same
// builder image, with the same configuration, that envd pushes to the
// cluster's registry. Its socket is in the pod only; envd reaches it with
// `buildctl dial-stdio`, run in the pod through the API server.
const (
	PodRoot   = containerRoot
	PodConfig = containerConfig
	PodSocket = "/run/buildkit/buildkitd.sock"
)

// PodImage is the builder image a pod runs.
type PodImage struct {
	// Ref is $ENVD_BUILDER_IMAGE, which the cluster pulls as it is (Image
	// is then nil), or else "" and Image is envd's own, to push to a
	// registry of the user's under the tag Tag.
	Ref   string
	Image v1.Image
	Tag   string
	// Close removes the files Image is read from; call it after the push.
	Close func()
}

// ForPod returns the image for a builder in a cluster: envd's own, with
// buildctl in it, unless $ENVD_BUILDER_IMAGE names another.
func (o Options) ForPod() (PodImage, error) {
	if image := os.Getenv(imageEnv); image != "" {
		return PodImage{Ref: image, Close: func() {}}, nil
	}
	o, err := o.withDefaults()
	if err != nil {
		return PodImage{}, err
	}
	files, err := o.builderFiles(forPod)
	if err != nil {
		return PodImage{}, err
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return PodImage{}, err
	}
	var tag name.Tag
	var img v1.Image
	var cleanup func()
	if tag, img, cleanup, err = builderImage(o.Dir, files); err != nil {
		return PodImage{}, fmt.Errorf("make the builder image: %w", err)
	}
	return PodImage{Image: img, Tag: tag.TagStr(), Close: cleanup}, nil
}

// PodConfigFor is the buildkitd.toml of a builder in a pod with o's mirror.
func PodConfigFor(o Options) ([]byte, error) {
	return renderConfigAt(o, PodRoot, nil)
}
