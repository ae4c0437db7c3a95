package kube

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"envd.dev/envd/internal/agent"
	"envd.dev/envd/internal/sshconfig"
)

// These tests run against a real cluster: scripts/kube-cluster.sh up, then
// ENVD_E2E=1 ENVD_KUBECONFIG=<the path it printed>. The image is the
// registry mirror's debian:bookworm with envd's agent added, pushed to the
// registry on 127.0.0.1:5000 that the cluster pulls from.
const registry = "127.0.0.1:5000"

func kubeE2E(t *testing.T) string {
	t.Helper()
	kc := os.Getenv("ENVD_KUBECONFIG")
	if os.Getenv("ENVD_E2E") != "1" || kc == "" {
		t.Skip("needs a cluster: ENVD_E2E=1 ENVD_KUBECONFIG=... (scripts/kube-cluster.sh up prints it)")
	}
	return kc
}

// builtImage is agentImage's result, made once per test run.
var builtImage struct {
	sync.Mutex
	ref string
}

// agentImage builds the agent, adds it to debian:bookworm with Docker and
// pushes the result; it returns the image by digest.
func agentImage(t *testing.T) string {
	t.Helper()
	builtImage.Lock()
	defer builtImage.Unlock()
	if builtImage.ref != "" {
		return builtImage.ref
	}
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "envd-agent"), "envd.dev/envd/cmd/envd-agent")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	run(t, build)
	base := registry + "/library/debian:bookworm"
	ref := fmt.Sprintf("%s/envd-test/kube-agent:%d", registry, time.Now().UnixNano())
	docker := func(args ...string) string { return run(t, exec.Command("/usr/bin/docker", args...)) }
	docker("pull", "-q", base)
	ctr := strings.TrimSpace(docker("create", base))
	defer docker("rm", ctr)
	docker("cp", filepath.Join(dir, "envd-agent"), ctr+":/usr/local/bin/envd-agent")
	docker("commit", "--change", `ENTRYPOINT ["/usr/local/bin/envd-agent", "run"]`, ctr, ref)
	defer docker("rmi", ref)
	docker("push", ref)
	digest := strings.TrimSpace(docker("inspect", "--format", "{{index .RepoDigests 0}}", ref))
	if !strings.Contains(digest, "@sha256:") {
		t.Fatalf("no digest for %s: %q", ref, digest)
	}
	builtImage.ref = digest
	return digest
}

func run(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
	}
	return string(out)
}

// keys makes a host key and a user key and the secret files for the agent.
func keys(t *testing.T) (secrets map[string][]byte, user ssh.Signer, hostKey ssh.PublicKey) {
	t.Helper()
	hostPEM, hostPub, err := sshconfig.NewHostKey()
	if err != nil {
		t.Fatal(err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	user, err = ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	cfg := agent.Config{
		SSH: agent.SSHConfig{
			Listen: "0.0.0.0:2222", HostKey: "/run/envd/host_key", AuthorizedKeys: "/run/envd/authorized_keys",
			Shell: "/bin/bash",
		},
		Workdir: "/work/project",
		User:    &agent.User{Name: "root", UID: 0, GID: 0, Home: "/root"},
	}
	conf, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{
		"host_key":        hostPEM,
		"authorized_keys": ssh.MarshalAuthorizedKey(user.PublicKey()),
		"agent.json":      conf,
	}, user, hostPub
}

func testSpec(name, image string, secrets map[string][]byte) Spec {
	return Spec{
		Name: name, Image: image, Secrets: secrets, SecretDir: "/run/envd", ProjectDir: "/work/project",
		Env:   map[string]string{agent.ConfigPathEnv: "/run/envd/agent.json"},
		Ports: []int{2222},
	}
}

// sshRun dials the environment's sshd through the port-forward and runs cmd.
func sshRun(ctx context.Context, t *testing.T, r *Runtime, name string, user ssh.Signer, hostKey ssh.PublicKey, cmd string) (string, error) {
	t.Helper()
	var lastErr error
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		conn, err := r.Dial(ctx, name, 2222)
		if err != nil {
			return "", err
		}
		c, chans, reqs, err := ssh.NewClientConn(conn, "env", &ssh.ClientConfig{
			User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(user)}, HostKeyCallback: ssh.FixedHostKey(hostKey),
		})
		if err != nil {
			// sshd may not listen yet: the kubelet says connection refused.
			conn.Close()
			lastErr = err
			time.Sleep(200 * time.Millisecond)
			continue
		}
		client := ssh.NewClient(c, chans, reqs)
		defer client.Close()
		s, err := client.NewSession()
		if err != nil {
			return "", err
		}
		defer s.Close()
		out, err := s.CombinedOutput(cmd)
		return string(out), err
	}
	return "", fmt.Errorf("ssh never answered: %v", lastErr)
}

func connect(t *testing.T, kc, ns string) *Runtime {
	t.Helper()
	r, err := Connect(Options{Kubeconfig: kc, Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// testNamespace creates a namespace for one test and deletes it after.
func testNamespace(t *testing.T, r *Runtime) string {
	t.Helper()
	ns := fmt.Sprintf("envd-test-%d", time.Now().UnixNano()%1_000_000_000)
	if _, err := r.cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	return ns
}

// objects lists what exists of environment name: "pod", "secret", "claim".
func objects(t *testing.T, r *Runtime, name string) []string {
	t.Helper()
	ctx := context.Background()
	var have []string
	if _, err := r.cs.CoreV1().Pods(r.namespace).Get(ctx, podName(name), metav1.GetOptions{}); err == nil {
		have = append(have, "pod")
	}
	if _, err := r.cs.CoreV1().Secrets(r.namespace).Get(ctx, secretName(name), metav1.GetOptions{}); err == nil {
		have = append(have, "secret")
	}
	if _, err := r.cs.CoreV1().PersistentVolumeClaims(r.namespace).Get(ctx, claimName(name), metav1.GetOptions{}); err == nil {
		have = append(have, "claim")
	}
	return have
}

// cluster is what each test works with: the admin's runtime, one in a
// namespace of the test's own, and the agent's image.
type cluster struct {
	kubeconfig, namespace string
	admin, r              *Runtime
	image                 string
}

func newCluster(t *testing.T) cluster {
	t.Helper()
	kc := kubeE2E(t)
	admin := connect(t, kc, "default")
	ns := testNamespace(t, admin)
	return cluster{kubeconfig: kc, namespace: ns, admin: admin, r: connect(t, kc, ns), image: agentImage(t)}
}

func TestKubeEnvironmentLifecycle(t *testing.T) {
	c := newCluster(t)
	ctx, r, image := context.Background(), c.r, c.image
	secrets, user, hostKey := keys(t)
	spec := testSpec("life", image, secrets)

	env, err := r.Start(ctx, spec, 3*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !env.Running || env.Image != image {
		t.Errorf("env after Start = %+v, want running %s", env, image)
	}
	out, err := sshRun(ctx, t, r, "life", user, hostKey, "id -u && pwd && echo precious > /work/project/work.txt && test ! -e /var/run/secrets/kubernetes.io/serviceaccount && echo no-token")
	if err != nil {
		t.Fatalf("ssh through the port-forward: %v\n%s", err, out)
	}
	if want := "0\n/work/project\nno-token\n"; out != want {
		t.Errorf("ssh output %q, want %q", out, want)
	}
	envs, err := r.List(ctx)
	if err != nil || len(envs) != 1 || envs[0].Name != "life" {
		t.Errorf("List = %+v, %v; want the one environment", envs, err)
	}

	// down keeps the claim and the work in it; up again finds it.
	if err := r.Down(ctx, "life"); err != nil {
		t.Fatal(err)
	}
	if got := objects(t, r, "life"); strings.Join(got, ",") != "claim" {
		t.Errorf("after Down: %v exist, want only the claim", got)
	}
	if _, err := r.Start(ctx, spec, 3*time.Minute); err != nil {
		t.Fatal(err)
	}
	if out, err := sshRun(ctx, t, r, "life", user, hostKey, "cat /work/project/work.txt"); err != nil || out != "precious\n" {
		t.Errorf("after down and up, work.txt = %q, %v; want precious", out, err)
	}
	if err := r.Destroy(ctx, "life"); err != nil {
		t.Fatal(err)
	}
	if got := objects(t, r, "life"); len(got) != 0 {
		t.Errorf("after Destroy: %v exist, want nothing", got)
	}
}

// TestKubeFailuresLeaveNothing: each failure says what is wrong in plain
// words and leaves no pod, secret or claim behind.
func TestKubeFailuresLeaveNothing(t *testing.T) {
	c := newCluster(t)
	ctx, r, image, admin, ns, kc := context.Background(), c.r, c.image, c.admin, c.namespace, c.kubeconfig
	secrets, _, _ := keys(t)

	gpu := testSpec("gpu", image, secrets)
	gpu.GPUs = 1
	missing := testSpec("noimage", registry+"/envd-test/missing@sha256:"+strings.Repeat("0", 64), secrets)
	for _, tc := range []struct {
		name string
		spec Spec
		want []string
	}{
		{"no GPU node", gpu, []string{"no node of the cluster can run environment gpu", "nvidia.com/gpu", "--no-gpu"}},
		{"image not pullable", missing, []string{"cannot pull the image", missing.Image}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.Start(ctx, tc.spec, 2*time.Minute)
			if err == nil {
				t.Fatal("Start succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
			if got := objects(t, r, tc.spec.Name); len(got) != 0 {
				t.Errorf("left behind: %v", got)
			}
		})
	}

	t.Run("namespace missing", func(t *testing.T) {
		r := connect(t, kc, "envd-no-such-namespace")
		_, err := r.Start(ctx, testSpec("x", image, secrets), time.Minute)
		if err == nil || !strings.Contains(err.Error(), `namespace "envd-no-such-namespace" does not exist`) {
			t.Errorf("error = %v", err)
		}
	})

	t.Run("forbidden", func(t *testing.T) {
		// A service account with no role at all, through a kubeconfig of its own.
		sa, err := admin.cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "nobody"}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
		tok, err := admin.cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa.Name, &authTokenRequest, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: %q, certificate-authority-data: %q}}]
users: [{name: nobody, user: {token: %q}}]
contexts: [{name: c, context: {cluster: c, user: nobody, namespace: %s}}]
current-context: c
`, admin.cfg.Host, b64(t, admin.cfg.TLSClientConfig.CAData, admin.cfg.TLSClientConfig.CAFile), tok.Status.Token, ns)
		path := filepath.Join(t.TempDir(), "kubeconfig")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		nobody := connect(t, path, "")
		_, err = nobody.Start(ctx, testSpec("denied", image, secrets), time.Minute)
		if err == nil || !strings.Contains(err.Error(), "does not allow you to get persistentvolumeclaims in namespace "+ns) {
			t.Errorf("error = %v", err)
		}
		if got := objects(t, r, "denied"); len(got) != 0 {
			t.Errorf("left behind: %v", got)
		}
	})
}

var authTokenRequest = authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr(int64(600))}}

func ptr[T any](v T) *T { return &v }

// b64 is the cluster's CA for a kubeconfig, from the data or its file.
func b64(t *testing.T, data []byte, file string) string {
	t.Helper()
	if len(data) == 0 {
		var err error
		if data, err = os.ReadFile(file); err != nil {
			t.Fatal(err)
		}
	}
	return base64.StdEncoding.EncodeToString(data)
}
