package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"envd.dev/envd/internal/runtime"
)

// Options say which cluster and namespace: a kubeconfig file ("" the
// usual rules: $KUBECONFIG, ~/.kube/config), a context in it ("" its
// current one) and a namespace ("" the context's, else "default").
type Options struct {
	Kubeconfig string
	Context    string
	Namespace  string
}

// Runtime runs environments in one namespace of one cluster.
type Runtime struct {
	cs        kubernetes.Interface
	cfg       *rest.Config
	namespace string
	// poll is how often Start and Down look at the pod: often, as a user
	// waits on every step (one GET a tenth of a second).
	poll time.Duration

	tunnelsMu sync.Mutex
	tunnels   map[string]*tunnel // by environment name
}

// Connect reads the kubeconfig; it does not contact the cluster.
func Connect(o Options) (*Runtime, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if o.Kubeconfig != "" {
		rules.ExplicitPath = o.Kubeconfig
	}
	overrides := &clientcmd.ConfigOverrides{CurrentContext: o.Context}
	overrides.Context.Namespace = o.Namespace
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w\n  hint: give the file with --kubeconfig (or $KUBECONFIG) and the context with --kube-context", err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Runtime{cs: cs, cfg: cfg, namespace: ns, poll: 100 * time.Millisecond}, nil
}

// Namespace is where the environments live.
func (r *Runtime) Namespace() string { return r.namespace }

// Env is an environment as the cluster reports it.
type Env struct {
	Name    string            `json:"name"`
	Pod     string            `json:"pod"`
	Image   string            `json:"image"`
	Status  string            `json:"status"`
	Running bool              `json:"running"`
	Node    string            `json:"node,omitempty"`
	Created time.Time         `json:"created"`
	Labels  map[string]string // with the pod's annotations
	Ports   []int
}

// ErrNotFound: no environment of that name in the namespace.
var ErrNotFound = runtime.ErrNotFound

// Start creates the environment's claim (unless it exists: it holds the
// user's work), secret and pod, and waits until the pod's container runs.
// On failure, Ctrl-C included, it removes what it created.
func (r *Runtime) Start(ctx context.Context, s Spec, timeout time.Duration) (env *Env, err error) {
	if err := r.checkNamespace(ctx); err != nil {
		return nil, err
	}
	var created []func(context.Context)
	defer func() {
		if err == nil {
			return
		}
		cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		for i := len(created) - 1; i >= 0; i-- {
			created[i](cleanup)
		}
	}()

	claims := r.cs.CoreV1().PersistentVolumeClaims(r.namespace)
	if _, err := claims.Get(ctx, claimName(s.Name), metav1.GetOptions{}); apierrors.IsNotFound(err) {
		if _, err := claims.Create(ctx, claimFor(s), metav1.CreateOptions{}); err != nil {
			return nil, r.explain(err, "create", "persistentvolumeclaims")
		}
		created = append(created, func(ctx context.Context) { r.deleteClaim(ctx, s.Name) })
	} else if err != nil {
		return nil, r.explain(err, "get", "persistentvolumeclaims")
	}

	secrets := r.cs.CoreV1().Secrets(r.namespace)
	own := []*corev1.Secret{secretFor(s)}
	if s.PullAuth != nil {
		own = append(own, pullSecretFor(s))
	}
	for _, secret := range own {
		if _, err := secrets.Create(ctx, secret, metav1.CreateOptions{}); apierrors.IsAlreadyExists(err) {
			// Left by an up that was killed: it is ours (same name and labels).
			_, err = secrets.Update(ctx, secret, metav1.UpdateOptions{})
			if err != nil {
				return nil, r.explain(err, "update", "secrets")
			}
		} else if err != nil {
			return nil, r.explain(err, "create", "secrets")
		}
		created = append(created, func(ctx context.Context) {
			secrets.Delete(ctx, secret.Name, metav1.DeleteOptions{})
		})
	}

	pods := r.cs.CoreV1().Pods(r.namespace)
	if _, err := pods.Create(ctx, podFor(s), metav1.CreateOptions{}); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("environment %s already has a pod (%s) in namespace %s\n  hint: envd down %s first", s.Name, podName(s.Name), r.namespace, s.Name)
		}
		return nil, r.explain(err, "create", "pods")
	}
	created = append(created, func(ctx context.Context) { r.deletePod(ctx, s.Name) })

	waitCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	pod, err := r.waitRunning(waitCtx, s)
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("environment %s was not running within %s%s%s\n  hint: --timeout waits longer", s.Name, timeout, r.unboundClaim(ctx, s.Name), r.lastWords(ctx, s.Name))
		}
		return nil, err
	}
	return envOf(pod), nil
}

// unboundClaim says why a pod waits for its claim, or "".
func (r *Runtime) unboundClaim(ctx context.Context, name string) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	c, err := r.cs.CoreV1().PersistentVolumeClaims(r.namespace).Get(ctx, claimName(name), metav1.GetOptions{})
	if err != nil || c.Status.Phase == corev1.ClaimBound {
		return ""
	}
	return fmt.Sprintf(": its project claim %s is still %s (is there a default StorageClass with a provisioner? the context can name none yet)", c.Name, c.Status.Phase)
}

// checkNamespace says in plain words when the namespace is missing. A user
// who may not read namespaces finds out at the first create instead.
func (r *Runtime) checkNamespace(ctx context.Context) error {
	_, err := r.cs.CoreV1().Namespaces().Get(ctx, r.namespace, metav1.GetOptions{})
	switch {
	case err == nil, apierrors.IsForbidden(err):
		return nil
	case apierrors.IsNotFound(err):
		return fmt.Errorf("namespace %q does not exist in the cluster\n  hint: ask for it to be created (kubectl create namespace %s), or use another: envd context create ... --namespace NS", r.namespace, r.namespace)
	default:
		return r.explain(err, "get", "namespaces")
	}
}

// explain turns an API error into what the user can act on.
func (r *Runtime) explain(err error, verb, resource string) error {
	switch {
	case apierrors.IsForbidden(err):
		return fmt.Errorf("the cluster does not allow you to %s %s in namespace %s: %v\n  hint: ask the cluster's admin for a Role that allows %s on %s there (envd needs get, list, create, update, delete on pods, pods/portforward, pods/log, secrets, persistentvolumeclaims)", verb, resource, r.namespace, err, verb, resource)
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("the cluster did not accept your credentials: %v\n  hint: refresh the kubeconfig's credentials (log in again)", err)
	case apierrors.IsNotFound(err) && resource != "namespaces":
		return fmt.Errorf("%s in namespace %s: %v", resource, r.namespace, err)
	}
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return fmt.Errorf("cannot reach the cluster at %s: %v\n  hint: is the API server up and the kubeconfig right?", r.cfg.Host, err)
	}
	return fmt.Errorf("%s %s: %w", verb, resource, err)
}

// waitRunning polls the pod until its container runs, or fails with why it
// cannot: unschedulable, image not pulled, container crashed.
func (r *Runtime) waitRunning(ctx context.Context, s Spec) (*corev1.Pod, error) {
	pods := r.cs.CoreV1().Pods(r.namespace)
	for {
		pod, err := pods.Get(ctx, podName(s.Name), metav1.GetOptions{})
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, r.explain(err, "get", "pods")
		}
		if done, err := r.diagnose(ctx, s, pod); done || err != nil {
			return pod, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(r.poll):
		}
	}
}

// diagnose says whether the pod's container runs, or why it never will.
func (r *Runtime) diagnose(ctx context.Context, s Spec, pod *corev1.Pod) (running bool, err error) {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable &&
			!isClaimWait(c.Message) {
			return false, unschedulable(s, c.Message)
		}
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name != containerName {
			continue
		}
		switch {
		case cs.State.Running != nil:
			return true, nil
		case cs.State.Waiting != nil:
			w := cs.State.Waiting
			switch w.Reason {
			case "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull":
				return false, pullFailed(s, w.Message)
			case "CreateContainerConfigError", "CreateContainerError", "RunContainerError":
				return false, fmt.Errorf("the cluster could not start the environment's container: %s: %s", w.Reason, w.Message)
			case "CrashLoopBackOff":
				return false, r.crashed(ctx, s.Name)
			}
		case cs.State.Terminated != nil:
			return false, r.crashed(ctx, s.Name)
		}
	}
	if pod.Status.Phase == corev1.PodFailed {
		return false, fmt.Errorf("the environment's pod failed: %s %s", pod.Status.Reason, pod.Status.Message)
	}
	return false, nil
}

// isClaimWait tells the scheduler's word for a claim still being
// provisioned: it tries again once the claim is bound.
func isClaimWait(msg string) bool { return strings.Contains(msg, "PersistentVolumeClaim") }

// pullFailed names the registry and the credential the nodes pulled with.
func pullFailed(s Spec, why string) error {
	host, _, _ := strings.Cut(s.Image, "/")
	cred := "without credentials: your Docker config has no login for " + host + " (docker login " + host + " gives one, which envd turns into the pod's pull secret)"
	if s.PullAuth != nil {
		cred = "with your login from " + s.PullAuthSource + " (as the pod's pull secret " + pullSecretName(s.Name) + ")"
	}
	return fmt.Errorf("the cluster cannot pull the image %s from the registry %s, %s: %s\n  hint: the cluster's nodes must reach %s and be allowed to pull from it; check the context's --registry", s.Image, host, cred, why, host)
}

func unschedulable(s Spec, why string) error {
	msg := fmt.Sprintf("no node of the cluster can run environment %s: %s", s.Name, why)
	switch {
	case s.GPUs > 0:
		return fmt.Errorf("%s\n  hint: it asks for %d %s; no node offers that many free (is the NVIDIA device plugin installed?); run without GPUs: envd up --no-gpu", msg, s.GPUs, GPUResource)
	case s.CPUs > 0 || s.Memory > 0:
		return fmt.Errorf("%s\n  hint: ask for less with --cpus and --memory", msg)
	}
	return errors.New(msg)
}

// crashed explains an agent that exited, with its last log lines.
func (r *Runtime) crashed(ctx context.Context, name string) error {
	return fmt.Errorf("the environment's agent exited while starting%s\n  hint: fix what the log says (a daemon or init command, the image), then run envd up again", r.lastWords(ctx, name))
}

// lastWords is the end of the container's log (of its previous run when it
// restarted), indented, for an error message.
func (r *Runtime) lastWords(ctx context.Context, name string) string {
	return r.podLastWords(ctx, podName(name), containerName)
}

// podLastWords is lastWords for a container of any pod.
func (r *Runtime) podLastWords(ctx context.Context, pod, container string) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	tail := int64(20)
	for _, previous := range []bool{true, false} {
		data, err := r.cs.CoreV1().Pods(r.namespace).GetLogs(pod, &corev1.PodLogOptions{
			Container: container, TailLines: &tail, Previous: previous,
		}).DoRaw(ctx)
		if err == nil && len(data) > 0 {
			return "\n  last lines of its log:\n    " + indent(string(data))
		}
	}
	return ""
}

// Get returns the environment, or ErrNotFound.
func (r *Runtime) Get(ctx context.Context, name string) (*Env, error) {
	pod, err := r.cs.CoreV1().Pods(r.namespace).Get(ctx, podName(name), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, r.explain(err, "get", "pods")
	}
	return envOf(pod), nil
}

// List returns envd's environments in the namespace.
func (r *Runtime) List(ctx context.Context) ([]Env, error) {
	pods, err := r.cs.CoreV1().Pods(r.namespace).List(ctx, metav1.ListOptions{LabelSelector: selector("")})
	if err != nil {
		return nil, r.explain(err, "list", "pods")
	}
	var envs []Env
	for i := range pods.Items {
		envs = append(envs, *envOf(&pods.Items[i]))
	}
	return envs, nil
}

// Down removes the pod and the secret and keeps the claim, with the work
// in it, for the next up. It returns once the pod is gone.
func (r *Runtime) Down(ctx context.Context, name string) error {
	if err := r.deletePod(ctx, name); err != nil {
		return err
	}
	for _, secret := range []string{secretName(name), pullSecretName(name)} {
		err := r.cs.CoreV1().Secrets(r.namespace).Delete(ctx, secret, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return r.explain(err, "delete", "secrets")
		}
	}
	return nil
}

// Destroy is Down and the claim too.
func (r *Runtime) Destroy(ctx context.Context, name string) error {
	if err := r.Down(ctx, name); err != nil {
		return err
	}
	return r.deleteClaim(ctx, name)
}

func (r *Runtime) deleteClaim(ctx context.Context, name string) error {
	claims := r.cs.CoreV1().PersistentVolumeClaims(r.namespace)
	return r.deleteAndWait(ctx, "persistentvolumeclaims", claimName(name),
		func(ctx context.Context) error { return claims.Delete(ctx, claimName(name), metav1.DeleteOptions{}) },
		func(ctx context.Context) error {
			_, err := claims.Get(ctx, claimName(name), metav1.GetOptions{})
			return err
		})
}

// deletePod deletes the pod and waits until it is gone, so that a new one
// of the same name can be created right after.
func (r *Runtime) deletePod(ctx context.Context, name string) error {
	r.closeTunnel(name)
	pods := r.cs.CoreV1().Pods(r.namespace)
	return r.deleteAndWait(ctx, "pods", podName(name),
		func(ctx context.Context) error { return pods.Delete(ctx, podName(name), metav1.DeleteOptions{}) },
		func(ctx context.Context) error {
			_, err := pods.Get(ctx, podName(name), metav1.GetOptions{})
			return err
		})
}

// deleteAndWait deletes an object and waits until it is gone: a pod ends
// its grace period, a claim waits for its pod (pvc-protection).
func (r *Runtime) deleteAndWait(ctx context.Context, resource, name string, del, get func(context.Context) error) error {
	if err := del(ctx); apierrors.IsNotFound(err) {
		return nil
	} else if err != nil {
		return r.explain(err, "delete", resource)
	}
	for {
		if err := get(ctx); apierrors.IsNotFound(err) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s %s is still being deleted: %w", resource, name, ctx.Err())
		case <-time.After(r.poll):
		}
	}
}

// Logs streams the agent's own output.
func (r *Runtime) Logs(ctx context.Context, name string, follow bool, tail int) (io.ReadCloser, error) {
	opts := &corev1.PodLogOptions{Container: containerName, Follow: follow}
	if tail > 0 {
		n := int64(tail)
		opts.TailLines = &n
	}
	rc, err := r.cs.CoreV1().Pods(r.namespace).GetLogs(podName(name), opts).Stream(ctx)
	if apierrors.IsNotFound(err) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, r.explain(err, "get", "pods/log")
	}
	return rc, nil
}

// MarkSynced records on the claim that the project was copied into it.
func (r *Runtime) MarkSynced(ctx context.Context, name string) error {
	claims := r.cs.CoreV1().PersistentVolumeClaims(r.namespace)
	c, err := claims.Get(ctx, claimName(name), metav1.GetOptions{})
	if err != nil {
		return r.explain(err, "get", "persistentvolumeclaims")
	}
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	c.Annotations[AnnotationSynced] = time.Now().UTC().Format(time.RFC3339)
	if _, err := claims.Update(ctx, c, metav1.UpdateOptions{}); err != nil {
		return r.explain(err, "update", "persistentvolumeclaims")
	}
	return nil
}

// Synced says whether the project was copied into the claim already.
func (r *Runtime) Synced(ctx context.Context, name string) (bool, error) {
	c, err := r.cs.CoreV1().PersistentVolumeClaims(r.namespace).Get(ctx, claimName(name), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, r.explain(err, "get", "persistentvolumeclaims")
	}
	return c.Annotations[AnnotationSynced] != "", nil
}

func envOf(p *corev1.Pod) *Env {
	e := &Env{
		Name: p.Labels[LabelName], Pod: p.Name, Status: string(p.Status.Phase), Node: p.Spec.NodeName,
		Created: p.CreationTimestamp.Time, Labels: p.Labels,
	}
	if len(p.Annotations) > 0 {
		e.Labels = maps.Clone(p.Labels)
		maps.Copy(e.Labels, p.Annotations)
	}
	if len(p.Spec.Containers) > 0 {
		e.Image = p.Spec.Containers[0].Image
		for _, cp := range p.Spec.Containers[0].Ports {
			e.Ports = append(e.Ports, int(cp.ContainerPort))
		}
	}
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name == containerName && cs.State.Running != nil {
			e.Running = true
		}
	}
	if p.DeletionTimestamp != nil {
		e.Status, e.Running = "Terminating", false
	}
	return e
}

func indent(s string) string {
	return strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}
