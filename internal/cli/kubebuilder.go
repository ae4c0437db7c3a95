package cli

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/moby/buildkit/client"
	"k8s.io/apimachinery/pkg/api/resource"

	"envd.dev/envd/internal/builderctx"
	"envd.dev/envd/internal/buildkitd"
	"envd.dev/envd/internal/kube"
	"envd.dev/envd/internal/registry"
)

// kubeBuilderTimeout bounds pulling the builder image and starting it.
const kubeBuilderTimeout = 5 * time.Minute

// kubeBuilderCache is the builder's claim: room for the 40 GB its GC
// policy keeps (buildkitd's config), and some.
var kubeBuilderCache = resource.MustParse("50Gi")

// kubeBuilderRepo is the builder image's repository under the context's
// registry prefix.
const kubeBuilderRepo = "envd-buildkit"

// kubeBuilder is the builder pod of a kubernetes context (--builder
// kube-pod): envd pushes its builder image to the context's registry and
// runs it in the context's namespace; builds push their images from
// there, so the image never comes to this machine.
type kubeBuilder struct {
	ctx  builderctx.Context
	rt   *kube.Runtime
	logf func(format string, args ...any)
}

func newKubeBuilder(s streams, c builderctx.Context) (*kubeBuilder, error) {
	rt, err := kube.Connect(kube.Options{Kubeconfig: c.Kube.Kubeconfig, Context: c.Kube.Context, Namespace: c.Kube.Namespace})
	if err != nil {
		return nil, err
	}
	return &kubeBuilder{ctx: c, rt: rt, logf: func(format string, args ...any) { fmt.Fprintf(s.err, "envd: "+format+"\n", args...) }}, nil
}

// spec is the builder to run: its image pushed to the context's registry,
// and its config with mirror, or with the mirror it had ("" for mirror).
func (k *kubeBuilder) spec(ctx context.Context, mirror string) (kube.BuilderSpec, error) {
	if mirror == "" {
		var err error
		if mirror, _, err = k.rt.BuilderMirror(ctx); err != nil {
			return kube.BuilderSpec{}, err
		}
	}
	cfg, err := buildkitd.PodConfigFor(buildkitd.Options{Mirror: mirror})
	if err != nil {
		return kube.BuilderSpec{}, err
	}
	img, err := buildkitd.Options{}.ForPod()
	if err != nil {
		return kube.BuilderSpec{}, err
	}
	defer img.Close()
	reg := k.ctx.Kube.Registry
	ref := img.Ref
	if img.Image != nil {
		ref, err = registry.Push(ctx, reg+"/"+kubeBuilderRepo+":"+img.Tag, img.Image, loopbackRegistry(reg))
		if err != nil {
			return kube.BuilderSpec{}, fmt.Errorf("push the builder image to the context's registry: %w", err)
		}
	}
	auth, _, err := pullAuth(reg)
	if err != nil {
		return kube.BuilderSpec{}, err
	}
	return kube.BuilderSpec{
		Image: ref, Config: cfg, Mirror: mirror,
		ConfigPath: buildkitd.PodConfig, RootDir: buildkitd.PodRoot, Socket: buildkitd.PodSocket,
		// A registry or mirror on 127.0.0.1 is the node's: only the node's
		// own network reaches it, as only the node's containerd pulls
		// from it.
		HostNetwork: loopbackRegistry(reg) || loopbackRegistry(strings.TrimPrefix(strings.TrimPrefix(mirror, "http://"), "https://")),
		CacheSize:   kubeBuilderCache,
		PullAuth:    auth,
		Logf:        k.logf,
	}, nil
}

// connect starts the builder pod unless it runs as it should, and
// returns a client that reaches it through the API server.
func (k *kubeBuilder) connect(ctx context.Context, mirror string) (*client.Client, error) {
	spec, err := k.spec(ctx, mirror)
	if err != nil {
		return nil, err
	}
	if err := k.rt.EnsureBuilder(ctx, spec, kubeBuilderTimeout); err != nil {
		return nil, err
	}
	dial := func(ctx context.Context, _ string) (net.Conn, error) {
		return k.rt.DialBuilder(ctx, buildkitd.PodSocket)
	}
	return builderctx.Verified(ctx, k.ctx, "kube-pod://"+k.rt.Namespace()+"/envd-buildkitd", client.WithContextDialer(dial))
}

// bootstrap is `envd bootstrap` for a builder pod.
func (k *kubeBuilder) bootstrap(ctx context.Context, s streams, o *bootstrapOptions) error {
	switch {
	case o.stop:
		// --stop keeps the cache; --stop --rm removes the builder whole.
		if err := k.rt.StopBuilder(ctx, o.remove); err != nil {
			return err
		}
		what := "stopped (its cache claim stays)"
		if o.remove {
			what = "removed, with its cache"
		}
		fmt.Fprintf(s.out, "builder pod in namespace %s %s\n", k.rt.Namespace(), what)
		return nil
	case o.status:
		state, err := k.rt.BuilderState(ctx)
		if err != nil {
			return err
		}
		mirror, _, err := k.rt.BuilderMirror(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(s.out, "builder pod: %s\nmirror: %s\n", state, orNone(mirror))
		return nil
	}
	c, err := k.connect(ctx, o.mirror)
	if err != nil {
		return err
	}
	c.Close()
	state, err := k.rt.BuilderState(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(s.out, "builder pod ready: %s\n", state)
	return nil
}
