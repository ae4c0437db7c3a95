package e2e

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// These run envd against the real single-node cluster that .ci/run starts
// (scripts/kube-cluster.sh up; ENVD_KUBECONFIG is the path it printed),
// pushing to the registry on 127.0.0.1:5000 that its nodes pull from.

const kubeRegistry = "127.0.0.1:5000/envd-e2e"

// kubeCluster gives the test a namespace of its own in the cluster, removed
// at the end, and a client to look at what envd made there.
func kubeCluster(t *testing.T) (kubeconfig, namespace string, cs kubernetes.Interface) {
	t.Helper()
	requireE2E(t)
	kubeconfig = os.Getenv("ENVD_KUBECONFIG")
	if kubeconfig == "" {
		t.Skip("needs a cluster: ENVD_KUBECONFIG=... (scripts/kube-cluster.sh up prints it)")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if cs, err = kubernetes.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	namespace = fmt.Sprintf("envd-e2e-%d", time.Now().UnixNano()%1e6)
	ctx := context.Background()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.CoreV1().Namespaces().Delete(context.Background(), namespace, metav1.DeleteOptions{}) })
	return kubeconfig, namespace, cs
}

// kubeObjects lists what envd has for env in the namespace: "pod", "secret",
// "pull-secret", "claim".
func kubeObjects(t *testing.T, cs kubernetes.Interface, ns, env string) []string {
	t.Helper()
	ctx := context.Background()
	have, check := presence(t)
	pod, err := cs.CoreV1().Pods(ns).Get(ctx, "envd-"+env, metav1.GetOptions{})
	if err == nil && pod.DeletionTimestamp != nil {
		err = apierrors.NewNotFound(corev1.Resource("pods"), pod.Name) // on its way out
	}
	check("pod", err)
	_, err = cs.CoreV1().Secrets(ns).Get(ctx, "envd-"+env, metav1.GetOptions{})
	check("secret", err)
	_, err = cs.CoreV1().Secrets(ns).Get(ctx, "envd-"+env+"-pull", metav1.GetOptions{})
	check("pull-secret", err)
	_, err = cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "envd-"+env+"-project", metav1.GetOptions{})
	check("claim", err)
	return *have
}

// presence is a list of the kinds found, and the check that adds to it: a
// Get that found the object adds its kind, NotFound adds nothing, anything
// else fails the test.
func presence(t *testing.T) (*[]string, func(kind string, err error)) {
	var have []string
	return &have, func(kind string, err error) {
		switch {
		case err == nil:
			have = append(have, kind)
		case !apierrors.IsNotFound(err):
			t.Fatalf("%s: %v", kind, err)
		}
	}
}

// imageHas reports whether any layer of the pushed image holds needle.
func imageHas(t *testing.T, ref string, needle []byte) bool {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatalf("reading %s from the registry: %v", ref, err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			if _, err := tr.Next(); err != nil {
				break
			}
			data, _ := io.ReadAll(tr)
			if strings.Contains(string(data), string(needle)) {
				rc.Close()
				return true
			}
		}
		rc.Close()
	}
	return false
}

// forwardedPort is the local address up printed for a container port.
func forwardedPort(t *testing.T, stdout string, port int) string {
	t.Helper()
	prefix := fmt.Sprintf("port     %d -> ", port)
	for _, line := range strings.Split(stdout, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), prefix); ok && strings.HasSuffix(rest, " (forwarded)") {
			return strings.TrimSuffix(rest, " (forwarded)")
		}
	}
	t.Fatalf("up printed no forwarded port %d:\n%s", port, stdout)
	return ""
}

func TestKubernetesEnvironment(t *testing.T) {
	kubeconfig, ns, cs := kubeCluster(t)
	ctxName := "e2e-kube"
	dir := project(t, "e2e-kube", map[string]string{
		"build.envd": `def build():
    base(os="debian12", language="python3")
    config.jupyter()
    runtime.expose(envd_port=8000, service="web")
    runtime.daemon(commands=[["python3", "-m", "http.server", "8000"]])
`,
		"hello.txt":         "from the host\n",
		".envdignore":       "scratch/\n",
		"scratch/big.bin":   "not for the cluster\n",
		"nested/config.txt": "nested\n",
	})
	name := "e2e-kube"

	// context create/ls: a context names a builder and a runtime.
	mustEnvd(t, dir, "context", "create", ctxName, "--runtime", "kubernetes", "--kubeconfig", kubeconfig, "--namespace", ns, "--registry", kubeRegistry)
	t.Cleanup(func() { envd(t, dir, "context", "rm", ctxName) })
	if ls := mustEnvd(t, dir, "context", "ls"); !strings.Contains(ls.stdout, ctxName) || !strings.Contains(ls.stdout, "kubernetes ("+"current kube context, "+ns) || !strings.Contains(ls.stdout, "docker (local)") {
		t.Errorf("context ls does not show both runtimes:\n%s", ls.stdout)
	}
	kenvd := func(args ...string) result { return envd(t, dir, append([]string{"--context", ctxName}, args...)...) }
	mustKenvd := func(args ...string) result {
		t.Helper()
		r := kenvd(args...)
		if r.code != 0 {
			t.Fatalf("envd --context %s %s: %s", ctxName, strings.Join(args, " "), r)
		}
		return r
	}
	t.Cleanup(func() { kenvd("destroy", name) })

	// The user's own ssh config must survive byte for byte.
	sshConfig := filepath.Join(homeDir, ".ssh", "config")
	os.MkdirAll(filepath.Dir(sshConfig), 0o700)
	userConfig := "# my hosts\nHost gpu-box\n  HostName 10.0.0.5\n  User me\n"
	if err := os.WriteFile(sshConfig, []byte(userConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	// A Docker login for the registry becomes the pod's pull secret (the
	// registry here takes anyone, so any login pulls).
	dockerConfig := filepath.Join(homeDir, ".docker", "config.json")
	os.MkdirAll(filepath.Dir(dockerConfig), 0o700)
	os.WriteFile(dockerConfig, []byte(`{"auths":{"127.0.0.1:5000":{"auth":"ZTJlOmUyZQ=="}}}`), 0o600)
	t.Cleanup(func() { os.Remove(dockerConfig) })

	up := mustKenvd("up", "--detach", "--progress", "quiet")
	web := forwardedPort(t, up.stdout, 8000)

	// The pod runs the pushed image by digest, with its pull secret; the
	// secret holds the keys, and the image does not.
	pod, err := cs.CoreV1().Pods(ns).Get(context.Background(), "envd-"+name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	image := pod.Spec.Containers[0].Image
	if !strings.HasPrefix(image, kubeRegistry+"/"+name+"@sha256:") || pod.Status.Phase != corev1.PodRunning {
		t.Errorf("pod runs %q (%s), want %s/%s by digest, running", image, pod.Status.Phase, kubeRegistry, name)
	}
	if len(pod.Spec.ImagePullSecrets) != 1 || pod.Spec.ImagePullSecrets[0].Name != "envd-"+name+"-pull" {
		t.Errorf("pull secrets %+v, want the one made from the Docker login", pod.Spec.ImagePullSecrets)
	}
	secret, err := cs.CoreV1().Secrets(ns).Get(context.Background(), "envd-"+name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := os.ReadFile(filepath.Join(stateDir, "config", "envd", "id_ed25519.pub"))
	if err != nil {
		t.Fatalf("envd's user key: %v", err)
	}
	keyBlob := strings.Fields(string(pub))[1]
	if !strings.Contains(string(secret.Data["authorized_keys"]), keyBlob) || len(secret.Data["ssh_host_ed25519_key"]) == 0 {
		t.Errorf("the secret lacks the keys: %v", keys(secret.Data))
	}
	if imageHas(t, image, []byte(keyBlob)) {
		t.Error("the user's public key is in the image")
	}

	// OpenSSH, through the managed entry (ProxyCommand envd --context ...).
	openssh := func(cmd string) (string, error) {
		out, err := exec.Command("ssh", "-F", sshConfig, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", name+".envd", cmd).CombinedOutput()
		return string(out), err
	}
	out, err := openssh("cat hello.txt nested/config.txt && id -un && pwd && echo made-in-env > made.txt && ls scratch 2>&1; true")
	if want := "from the host\nnested\nenvd\n/home/envd/e2e-kube\n"; err != nil || !strings.HasPrefix(out, want) || !strings.Contains(out, "No such file") {
		t.Errorf("ssh %s.envd: %v\n%s\nwant it to start with %q and find no scratch/ (ignored)", name, err, out, want)
	}
	if cfg, _ := os.ReadFile(sshConfig); !strings.Contains(string(cfg), "--context "+ctxName+" ssh --stdio "+name) {
		t.Errorf("the ssh entry does not go through envd --context %s:\n%s", ctxName, cfg)
	}

	// sync both ways.
	mustKenvd("sync", name, "--from-env")
	if b, err := os.ReadFile(filepath.Join(dir, "made.txt")); err != nil || string(b) != "made-in-env\n" {
		t.Errorf("sync --from-env: made.txt = %q, %v", b, err)
	}
	os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("changed on the host\n"), 0o644)
	mustKenvd("sync", name, "--to-env")
	if out, err := openssh("cat hello.txt"); err != nil || out != "changed on the host\n" {
		t.Errorf("after sync --to-env: %q, %v", out, err)
	}

	// The daemon and Jupyter through the background forwarder.
	eventually(t, 60*time.Second, "daemon answers through its forwarded port", func() error {
		code, body, err := httpGet("http://" + web + "/hello.txt")
		if err == nil && (code != 200 || body != "changed on the host\n") {
			err = fmt.Errorf("status %d body %q", code, body)
		}
		return err
	})
	checkJupyter(t, up.stdout)

	// exec, logs, ls: the same commands as on Docker.
	if r := kenvd("exec", name, "--", "sh", "-c", "exit 3"); r.code != 3 {
		t.Errorf("envd exec exit code %d, want 3\n%s", r.code, r)
	}
	if r := mustKenvd("logs", name, "web"); !strings.Contains(r.stdout, "GET /hello.txt") {
		t.Errorf("envd logs web lacks the request:\n%s", r.stdout)
	}
	var listed []lsEnv
	if err := json.Unmarshal([]byte(mustKenvd("ls", "-o", "json").stdout), &listed); err != nil || len(listed) != 1 || listed[0].Name != name {
		t.Fatalf("ls -o json: %+v, %v", listed, err)
	}
	if eps := listed[0].Endpoints; len(eps) != 2 || fmt.Sprintf("%s:%d", eps[0].HostIP, eps[0].HostPort) != web && fmt.Sprintf("%s:%d", eps[1].HostIP, eps[1].HostPort) != web {
		t.Errorf("ls endpoints %+v, want the forwarded web and jupyter ports", eps)
	}

	// down: pod, secrets, forwarder and ssh entry gone; the claim kept.
	mustKenvd("down", name)
	if got := kubeObjects(t, cs, ns, name); strings.Join(got, ",") != "claim" {
		t.Errorf("after down: %v, want only the claim", got)
	}
	if c, err := net.DialTimeout("tcp", web, time.Second); err == nil {
		c.Close()
		t.Errorf("the forwarded port %s still answers after down", web)
	}
	if data, _ := os.ReadFile(sshConfig); string(data) != userConfig {
		t.Errorf("ssh config after down:\n%s\nwant the user's own, byte for byte:\n%s", data, userConfig)
	}

	// up again: the work in the claim is still there, not overwritten.
	mustKenvd("up", "--detach", "--progress", "quiet")
	if out, err := openssh("cat made.txt hello.txt"); err != nil || out != "made-in-env\nchanged on the host\n" {
		t.Errorf("after down and up: %q, %v", out, err)
	}
	mustKenvd("destroy", name)
	if got := kubeObjects(t, cs, ns, name); len(got) != 0 {
		t.Errorf("after destroy: %v left", got)
	}
}

func keys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// TestKubernetesFailuresLeaveNothing: each failure says what is wrong in
// plain words, exits 1, and leaves no pod, secret, claim or ssh entry.
func TestKubernetesFailuresLeaveNothing(t *testing.T) {
	kubeconfig, ns, cs := kubeCluster(t)
	dir := project(t, "e2e-kube-fail", map[string]string{"build.envd": `def build():
    base(os="debian12", language="python3")
`})
	for _, tc := range []struct {
		name, namespace, registry string
		args                      []string
		want                      []string
	}{
		{"no GPU node", ns, kubeRegistry, []string{"--gpus", "1"}, []string{"no node of the cluster can run environment", "nvidia.com/gpu", "--no-gpu"}},
		{"registry unreachable", ns, "127.0.0.1:9/nowhere", nil, []string{"127.0.0.1:9"}},
		{"namespace missing", "envd-no-such-namespace", kubeRegistry, nil, []string{`namespace "envd-no-such-namespace" does not exist`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctxName := "e2e-fail"
			mustEnvd(t, dir, "context", "create", ctxName, "--runtime", "kubernetes", "--kubeconfig", kubeconfig, "--namespace", tc.namespace, "--registry", tc.registry)
			defer envd(t, dir, "context", "rm", ctxName)
			r := envd(t, dir, append([]string{"--context", ctxName, "up", "--detach", "--progress", "quiet", "--timeout", "2m"}, tc.args...)...)
			if r.code != 1 {
				t.Fatalf("want exit 1: %s", r)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr does not say %q:\n%s", w, r.stderr)
				}
			}
			if strings.Contains(r.stderr, "goroutine ") || strings.Contains(r.stderr, "panic") {
				t.Errorf("a stack trace:\n%s", r.stderr)
			}
			if got := kubeObjects(t, cs, ns, "e2e-kube-fail"); len(got) != 0 {
				t.Errorf("left behind: %v", got)
			}
			if cfg, err := os.ReadFile(filepath.Join(homeDir, ".ssh", "config")); err == nil && strings.Contains(string(cfg), "e2e-kube-fail") {
				t.Errorf("an ssh entry is left:\n%s", cfg)
			}
			if _, err := os.Stat(filepath.Join(stateDir, "data", "envd", "envs", "e2e-kube-fail")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("state left: %v", err)
			}
		})
	}
}
