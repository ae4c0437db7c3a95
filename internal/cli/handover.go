package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"

	"envd.dev/envd/internal/builder"
	"envd.dev/envd/internal/builderctx"
	"envd.dev/envd/internal/docker"
	"envd.dev/envd/internal/handover"
	"envd.dev/envd/internal/xdg"
)

// handoverPlan moves the image into Docker through envd's own registry:
// on this machine, or in the builder container on an ssh context's server.
type handoverPlan struct {
	reg    handoverRegistry
	repo   string
	ref    string // repo:tag in the registry
	export builder.Export
}

// planHandover picks how the image reaches Docker. The registry needs a
// builder on this machine (it pushes to 127.0.0.1); nil means tarball.
func planHandover(c builderctx.Context, via string, localBuilder bool, tag string) (*handoverPlan, error) {
	switch via {
	case "tarball":
		return nil, nil
	case "auto":
		if !localBuilder {
			return nil, nil
		}
	case "registry":
		if !localBuilder {
			return nil, usageError{fmt.Errorf("--load-via registry needs a builder on this machine; the current context's builder cannot reach 127.0.0.1")}
		}
	default:
		return nil, usageError{fmt.Errorf("--load-via %q: use auto, registry or tarball", via)}
	}
	reg, err := handover.Start(handoverDir(c))
	if err != nil {
		return nil, fmt.Errorf("starting the hand-over registry: %w", err)
	}
	return newHandoverPlan(reg, tag), nil
}

// handoverRegistry is where BuildKit pushes and Docker pulls from.
type handoverRegistry interface {
	Host() string
	Secret() string
	// Serve opens it once the build exports (a local one answers nothing
	// before); Close ends it.
	Serve()
	Close() error
	// Keep records the image's blobs and frees what no image needs.
	Keep(image, repo, ref string, live handover.LiveFunc) error
}

func newHandoverPlan(reg handoverRegistry, tag string) *handoverPlan {
	sum := sha256.Sum256([]byte(tag))
	h := &handoverPlan{reg: reg, repo: "envd/" + hex.EncodeToString(sum[:8])}
	h.ref = reg.Host() + "/" + h.repo + ":latest"
	h.export = builder.Export{Type: builder.ExportImage, Name: h.ref, Push: true, Attrs: map[string]string{
		"registry.insecure": "true",
		// A local hand-over: gzip would only burn CPU on both ends.
		"compression":    "uncompressed",
		"oci-mediatypes": "true",
	}}
	return h
}

// auth is what BuildKit needs to push to the registry.
func (h *handoverPlan) auth() map[string]builder.Credentials {
	return map[string]builder.Credentials{h.reg.Host(): {User: handover.User, Secret: h.reg.Secret()}}
}

// finish pulls the pushed image into Docker under tag, by the digest
// BuildKit pushed (so nothing else pushed under the tag can take its
// place), closes the registry, and lets it forget the blobs no image needs
// any more.
func (h *handoverPlan) finish(ctx context.Context, dk *docker.Client, tag, dgst string) error {
	defer h.reg.Close()
	if dgst == "" {
		return fmt.Errorf("the builder pushed the image without reporting its digest\n  hint: --load-via tarball avoids the registry")
	}
	ref := h.reg.Host() + "/" + h.repo + "@" + dgst
	if err := dk.PullAs(ctx, ref, tag, handover.User, h.reg.Secret()); err != nil {
		return fmt.Errorf("loading the image into Docker from %s: %w\n  hint: --load-via tarball avoids the registry", ref, err)
	}
	return h.reg.Keep(tag, h.repo, dgst, dockerHas(ctx, dk))
}

// handoverDir keeps the hand-over registry's blobs of one engine's images:
// the local Docker's, or Podman's.
func handoverDir(c builderctx.Context) string {
	if c.RuntimeKind() == builderctx.RuntimePodman {
		return filepath.Join(xdg.CacheDir(), "handover-podman")
	}
	return filepath.Join(xdg.CacheDir(), "handover")
}

// dockerHas says whether Docker still has an image; when it cannot tell, the
// image counts as there (its blobs stay).
func dockerHas(ctx context.Context, dk *docker.Client) handover.LiveFunc {
	return func(image string) bool {
		_, err := dk.InspectImage(ctx, image)
		return !errors.Is(err, docker.ErrImageNotFound)
	}
}

// pruneHandover frees the hand-over blobs of images Docker no longer has.
func pruneHandover(ctx context.Context, c builderctx.Context, dk *docker.Client) (int64, error) {
	if c.RuntimeKind() == builderctx.RuntimeSSH {
		return 0, nil // the server's hand-over cache is bounded by size, in its builder
	}
	freed, err := handover.GC(handoverDir(c), dockerHas(ctx, dk))
	if err != nil {
		return freed, fmt.Errorf("freeing the hand-over cache %s: %w", handoverDir(c), err)
	}
	return freed, nil
}
