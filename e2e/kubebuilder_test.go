package e2e

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"envd.dev/envd/internal/compile"
	"envd.dev/envd/internal/registry"
)

// builderObjects lists what the namespace holds of envd's builder: "pod",
// "claim", "config".
func builderObjects(t *testing.T, cs kubernetes.Interface, ns string) []string {
	t.Helper()
	ctx := context.Background()
	have, check := presence(t)
	pod, err := cs.CoreV1().Pods(ns).Get(ctx, "envd-buildkitd", metav1.GetOptions{})
	if err == nil && pod.DeletionTimestamp != nil {
		err = apierrors.NewNotFound(pod.GroupVersionKind().GroupVersion().WithResource("pods").GroupResource(), pod.Name)
	}
	check("pod", err)
	_, err = cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "envd-buildkitd-cache", metav1.GetOptions{})
	check("claim", err)
	_, err = cs.CoreV1().ConfigMaps(ns).Get(ctx, "envd-buildkitd", metav1.GetOptions{})
	check("config", err)
	return *have
}

var stepsCachedRE = regexp.MustCompile(`(\d+) of (\d+) steps cached`)

// allCached reports whether a build's summary says every step was cached.
func allCached(out string) bool {
	m := stepsCachedRE.FindStringSubmatch(out)
	return m != nil && m[1] == m[2]
}

// TestKubernetesBuilderPod builds in the cluster (--builder kube-pod): envd
// pushes its own builder image to the context's registry and runs it as a
// pod; the images it builds go from there to the registry, never to this
// machine's Docker; the cache outlives the pod; an environment runs the
// image; and removing the builder leaves nothing of it.
func TestKubernetesBuilderPod(t *testing.T) {
	kubeconfig, ns, cs := kubeCluster(t)
	srv := index(t, wheel{name: "alpha", version: "1.0"})
	name := "e2e-kpod"
	dir := project(t, name, map[string]string{"build.envd": fmt.Sprintf(`def build():
    base(os="debian12", language="python3")
    config.pip_index(url=%q, trust=True)
    install.python_packages(name=["alpha"])
`, srv.URL())})
	ctxName := "e2e-kpod"
	mustEnvd(t, dir, "context", "create", ctxName, "--builder", "kube-pod", "--runtime", "kubernetes",
		"--kubeconfig", kubeconfig, "--namespace", ns, "--registry", kubeRegistry)
	t.Cleanup(func() { envd(t, dir, "context", "rm", ctxName) })
	kenvd := func(args ...string) result { return envd(t, dir, append([]string{"--context", ctxName}, args...)...) }
	mustKenvd := func(args ...string) result {
		t.Helper()
		r := kenvd(args...)
		if r.code != 0 {
			t.Fatalf("envd --context %s %s: %s", ctxName, strings.Join(args, " "), r)
		}
		return r
	}
	t.Cleanup(func() {
		kenvd("destroy", name)
		kenvd("bootstrap", "--stop", "--rm")
	})

	// A builder image the cluster cannot pull: a clear error, and no pod.
	t.Run("unpullable builder image", func(t *testing.T) {
		t.Setenv("ENVD_BUILDER_IMAGE", "127.0.0.1:5000/envd-e2e/no-such-builder:1")
		r := kenvd("bootstrap", "--registry-mirror", mirror)
		if r.code != 1 || !strings.Contains(r.stderr, "cannot pull the builder image 127.0.0.1:5000/envd-e2e/no-such-builder:1") || strings.Contains(r.stderr, "goroutine") {
			t.Errorf("want exit 1 saying the builder image cannot be pulled: %s", r)
		}
		if have := builderObjects(t, cs, ns); strings.Contains(strings.Join(have, " "), "pod") {
			t.Errorf("a builder pod was left behind after it failed: %v", have)
		}
	})

	boot := mustKenvd("bootstrap", "--registry-mirror", mirror)
	if !strings.Contains(boot.stdout, "builder pod ready: running (pod envd-buildkitd in namespace "+ns) ||
		!strings.Contains(boot.stderr, "starting the builder pod envd-buildkitd in namespace "+ns+" ("+kubeRegistry+"/envd-buildkit@sha256:") {
		t.Errorf("bootstrap did not start envd's own builder image from the context's registry: %s", boot)
	}

	// The build runs in the pod and pushes to the registry; this machine's
	// Docker never gets the image.
	ref := kubeRegistry + "/" + name + ":dev"
	mustKenvd("build", "--progress", "plain")
	img, err := registry.Lookup(context.Background(), ref, true)
	if err != nil {
		t.Fatalf("the build did not push %s: %v", ref, err)
	}
	if img.Labels[compile.LabelBuildKey] == "" {
		t.Errorf("%s has no build key label: %v", ref, img.Labels)
	}
	for _, tag := range []string{name + ":dev", ref} {
		if out, err := dockerCmd(t, "image", "inspect", tag); err == nil {
			t.Errorf("the local Docker has %s, built in the cluster:\n%s", tag, out)
		}
	}
	if n := srv.Downloads(alphaWheel(t, srv)); n != 1 {
		t.Errorf("the build downloaded alpha %d times, want 1", n)
	}

	// The same file again: nothing to do; forced, every step is cached.
	if r := mustKenvd("build"); !strings.Contains(r.stdout+r.stderr, "up to date") {
		t.Errorf("a second build of the same file was not skipped: %s", r)
	}
	if r := mustKenvd("build", "--force"); !allCached(r.stdout + r.stderr) {
		t.Errorf("a forced rebuild was not cached in the builder pod: %s", r)
	}

	// The cache is on the claim: a new pod has it.
	mustKenvd("bootstrap", "--stop")
	if have := strings.Join(builderObjects(t, cs, ns), " "); have != "claim config" {
		t.Errorf("after bootstrap --stop the namespace has %q of the builder, want its claim and config only", have)
	}
	if r := mustKenvd("build", "--force"); !allCached(r.stdout+r.stderr) || !strings.Contains(r.stderr, "starting the builder pod") {
		t.Errorf("a new builder pod did not start with the old cache: %s", r)
	}
	if n := srv.Downloads(alphaWheel(t, srv)); n != 1 {
		t.Errorf("alpha was downloaded %d times, want once: the cache was lost with the pod", n)
	}
	if r := mustKenvd("bootstrap", "--status"); !strings.Contains(r.stdout, "builder pod: running") || !strings.Contains(r.stdout, "mirror: "+mirror) {
		t.Errorf("status does not show the running builder with its mirror: %s", r)
	}

	// An environment runs the image the pod built; the builder is not an
	// environment.
	mustKenvd("up", "--detach", "--progress", "quiet")
	if r := mustKenvd("exec", name, "--", "python", "-c", "import alpha; print(alpha.__version__)"); strings.TrimSpace(r.stdout) != "1.0" {
		t.Errorf("alpha in the environment: %s", r)
	}
	if r := mustKenvd("ls"); strings.Contains(r.stdout, "envd-buildkit") {
		t.Errorf("envd ls lists the builder pod as an environment:\n%s", r.stdout)
	}
	mustKenvd("destroy", name)

	// --stop --rm removes all of the builder.
	mustKenvd("bootstrap", "--stop", "--rm")
	if have := builderObjects(t, cs, ns); len(have) != 0 {
		t.Errorf("after bootstrap --stop --rm the namespace still has %v of the builder", have)
	}
}
