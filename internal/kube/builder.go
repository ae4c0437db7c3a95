package kube

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A builder in the cluster is envd's BuildKit as one pod per namespace,
// as buildx's kubernetes driver has it: the pod (privileged, as BuildKit's
// runc worker needs), a ConfigMap with its buildkitd.toml and a claim that
// keeps its cache across pods. envd reaches it only through the API
// server (an exec of `buildctl dial-stdio`), so its socket never listens
// on any network.
const (
	builderName      = "envd-buildkitd"
	builderClaim     = "envd-buildkitd-cache"
	builderContainer = "buildkitd"
	// LabelBuilder marks the builder's objects.
	LabelBuilder = "dev.envd.builder"
	// annotationBuilderSpec on the pod is a hash of what it was made from:
	// a change recreates it. annotationMirror on the ConfigMap is the
	// docker.io mirror in its config, kept for builds that name none.
	annotationBuilderSpec = "dev.envd.builder.spec"
	annotationMirror      = "dev.envd.builder.mirror"
	configKey             = "buildkitd.toml"
)

// BuilderSpec is the builder to run.
type BuilderSpec struct {
	Image  string // the builder image, as the nodes pull it
	Config []byte // buildkitd.toml, mounted at ConfigPath
	Mirror string // the mirror Config names, for BuilderMirror
	// ConfigPath, RootDir and Socket are where buildkitd reads its config,
	// keeps its state (the claim) and listens, inside the pod.
	ConfigPath, RootDir, Socket string
	// HostNetwork puts the pod in its node's network: a registry or mirror
	// on the node's 127.0.0.1 is reachable only from there.
	HostNetwork bool
	// CacheSize is the claim's request.
	CacheSize resource.Quantity
	// PullAuth is a .dockerconfigjson for pulling Image, as for environments.
	PullAuth []byte
	// Logf tells the user what is being done that takes a while.
	Logf func(format string, args ...any) `json:"-"`
}

func (s BuilderSpec) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
	}
}

// hash names what the pod is made of.
func (s BuilderSpec) hash() string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n%s\n%t\n", s.Image, s.ConfigPath, s.RootDir, s.Socket, s.HostNetwork)
	h.Write(s.Config)
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func builderLabels() map[string]string {
	return map[string]string{LabelManagedBy: managedBy, LabelBuilder: "buildkitd"}
}

// EnsureBuilder starts the builder unless it runs as s asks, and waits
// until buildkitd answers in it. A pod made from other settings is
// replaced; the cache claim stays. A pod that cannot start is removed,
// with the reason.
func (r *Runtime) EnsureBuilder(ctx context.Context, s BuilderSpec, timeout time.Duration) error {
	if err := r.checkNamespace(ctx); err != nil {
		return err
	}
	pods := r.cs.CoreV1().Pods(r.namespace)
	want := s.hash()
	pod, err := pods.Get(ctx, builderName, metav1.GetOptions{})
	switch {
	case err == nil && pod.Annotations[annotationBuilderSpec] == want && pod.DeletionTimestamp == nil && pod.Status.Phase != corev1.PodFailed:
		if isReady(pod) {
			return nil
		}
		return r.waitBuilder(ctx, s, timeout)
	case err == nil:
		s.logf("replacing the builder pod %s: it was made from other settings (its cache stays)", builderName)
		if err := r.deleteBuilderPod(ctx); err != nil {
			return err
		}
	case !apierrors.IsNotFound(err):
		return r.explain(err, "get", "pods")
	}
	if err := r.applyBuilderObjects(ctx, s); err != nil {
		return err
	}
	s.logf("starting the builder pod %s in namespace %s (%s)", builderName, r.namespace, s.Image)
	if _, err := pods.Create(ctx, builderPodFor(s, want), metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return r.explain(err, "create", "pods")
	}
	if err := r.waitBuilder(ctx, s, timeout); err != nil {
		cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		r.deleteBuilderPod(cleanup)
		return err
	}
	return nil
}

// applyBuilderObjects creates or updates the ConfigMap and the pull
// secret, and creates the cache claim unless it exists.
func (r *Runtime) applyBuilderObjects(ctx context.Context, s BuilderSpec) error {
	meta := metav1.ObjectMeta{Name: builderName, Labels: builderLabels(), Annotations: map[string]string{annotationMirror: s.Mirror}}
	cms := r.cs.CoreV1().ConfigMaps(r.namespace)
	cm := &corev1.ConfigMap{ObjectMeta: meta, Data: map[string]string{configKey: string(s.Config)}}
	if _, err := cms.Create(ctx, cm, metav1.CreateOptions{}); apierrors.IsAlreadyExists(err) {
		if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			return r.explain(err, "update", "configmaps")
		}
	} else if err != nil {
		return r.explain(err, "create", "configmaps")
	}
	secrets := r.cs.CoreV1().Secrets(r.namespace)
	if s.PullAuth != nil {
		sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: builderName + "-pull", Labels: builderLabels()},
			Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{corev1.DockerConfigJsonKey: s.PullAuth}}
		if _, err := secrets.Create(ctx, sec, metav1.CreateOptions{}); apierrors.IsAlreadyExists(err) {
			if _, err := secrets.Update(ctx, sec, metav1.UpdateOptions{}); err != nil {
				return r.explain(err, "update", "secrets")
			}
		} else if err != nil {
			return r.explain(err, "create", "secrets")
		}
	}
	claims := r.cs.CoreV1().PersistentVolumeClaims(r.namespace)
	if _, err := claims.Get(ctx, builderClaim, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		c := &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: builderClaim, Labels: builderLabels()},
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: s.CacheSize}},
			},
		}
		if _, err := claims.Create(ctx, c, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return r.explain(err, "create", "persistentvolumeclaims")
		}
	} else if err != nil {
		return r.explain(err, "get", "persistentvolumeclaims")
	}
	return nil
}

func builderPodFor(s BuilderSpec, hash string) *corev1.Pod {
	yes, no := true, false
	grace := int64(30)
	c := corev1.Container{
		Name:            builderContainer,
		Image:           s.Image,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Args:            []string{"--config", s.ConfigPath, "--addr", "unix://" + s.Socket},
		// runc makes mounts and namespaces for every build step.
		SecurityContext: &corev1.SecurityContext{Privileged: &yes},
		VolumeMounts: []corev1.VolumeMount{
			{Name: "config", MountPath: path.Dir(s.ConfigPath), ReadOnly: true},
			{Name: "cache", MountPath: s.RootDir},
			{Name: "run", MountPath: path.Dir(s.Socket)},
		},
		// Ready once buildkitd answers; a startup probe stops probing then.
		StartupProbe: &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{
				Command: []string{"buildctl", "--addr", "unix://" + s.Socket, "debug", "workers"},
			}},
			PeriodSeconds: 1, FailureThreshold: 300, TimeoutSeconds: 5,
		},
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: builderName, Labels: builderLabels(), Annotations: map[string]string{annotationBuilderSpec: hash}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{c},
			Volumes: []corev1.Volume{
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: builderName},
				}}},
				{Name: "cache", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: builderClaim}}},
				{Name: "run", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			},
			HostNetwork:                   s.HostNetwork,
			AutomountServiceAccountToken:  &no,
			EnableServiceLinks:            &no,
			TerminationGracePeriodSeconds: &grace,
			RestartPolicy:                 corev1.RestartPolicyAlways,
		},
	}
	if s.HostNetwork {
		p.Spec.DNSPolicy = corev1.DNSClusterFirstWithHostNet
	}
	if s.PullAuth != nil {
		p.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: builderName + "-pull"}}
	}
	return p
}

func isReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// waitBuilder waits until the builder pod is ready, or says why it
// cannot be.
func (r *Runtime) waitBuilder(ctx context.Context, s BuilderSpec, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	pods := r.cs.CoreV1().Pods(r.namespace)
	for {
		pod, err := pods.Get(ctx, builderName, metav1.GetOptions{})
		switch {
		case err == nil && isReady(pod):
			return nil
		case err == nil:
			if err := r.builderProblem(ctx, s, pod); err != nil {
				return err
			}
		case ctx.Err() == nil:
			return r.explain(err, "get", "pods")
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("the builder pod %s in namespace %s was not ready within %s%s\n  hint: see its events: kubectl -n %s describe pod %s",
					builderName, r.namespace, timeout, r.podLastWords(context.WithoutCancel(ctx), builderName, builderContainer), r.namespace, builderName)
			}
			return ctx.Err()
		case <-time.After(r.poll):
		}
	}
}

// builderProblem says why the builder pod will never be ready, or nil.
func (r *Runtime) builderProblem(ctx context.Context, s BuilderSpec, pod *corev1.Pod) error {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable &&
			!isClaimWait(c.Message) {
			return fmt.Errorf("no node of the cluster can run the builder pod: %s", c.Message)
		}
	}
	for _, cs := range pod.Status.ContainerStatuses {
		switch {
		case cs.State.Waiting != nil:
			w := cs.State.Waiting
			switch w.Reason {
			case "ErrImagePull", "ImagePullBackOff", "InvalidImageName":
				return fmt.Errorf("the cluster cannot pull the builder image %s: %s\n  hint: the nodes must reach the context's registry; check its --registry", s.Image, w.Message)
			case "CreateContainerConfigError", "CreateContainerError", "RunContainerError":
				return fmt.Errorf("the cluster could not start the builder's container: %s: %s\n  hint: the builder runs privileged (BuildKit's runc worker needs it); the namespace must allow privileged pods", w.Reason, w.Message)
			case "CrashLoopBackOff":
				return fmt.Errorf("buildkitd exited in the builder pod%s", r.podLastWords(ctx, builderName, builderContainer))
			}
		case cs.State.Terminated != nil:
			return fmt.Errorf("buildkitd exited in the builder pod%s", r.podLastWords(ctx, builderName, builderContainer))
		}
	}
	return nil
}

// BuilderMirror is the docker.io mirror the builder's config names, if
// the builder was ever set up ("" and false when not).
func (r *Runtime) BuilderMirror(ctx context.Context) (string, bool, error) {
	cm, err := r.cs.CoreV1().ConfigMaps(r.namespace).Get(ctx, builderName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", false, nil
	} else if err != nil {
		return "", false, r.explain(err, "get", "configmaps")
	}
	return cm.Annotations[annotationMirror], true, nil
}

// BuilderState says whether the builder pod runs, and where.
func (r *Runtime) BuilderState(ctx context.Context) (string, error) {
	pod, err := r.cs.CoreV1().Pods(r.namespace).Get(ctx, builderName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "not running (no pod " + builderName + " in namespace " + r.namespace + ")", nil
	} else if err != nil {
		return "", r.explain(err, "get", "pods")
	}
	state := string(pod.Status.Phase)
	if isReady(pod) {
		state = "running"
	}
	return fmt.Sprintf("%s (pod %s in namespace %s, node %s)", state, builderName, r.namespace, orUnscheduled(pod.Spec.NodeName)), nil
}

func orUnscheduled(node string) string {
	if node == "" {
		return "not scheduled yet"
	}
	return node
}

// StopBuilder removes the builder pod, and with cache also its claim, its
// ConfigMap and its pull secret: all of the builder.
func (r *Runtime) StopBuilder(ctx context.Context, cache bool) error {
	if err := r.deleteBuilderPod(ctx); err != nil {
		return err
	}
	if !cache {
		return nil
	}
	for _, del := range []struct {
		resource string
		delete   func() error
	}{
		{"configmaps", func() error {
			return r.cs.CoreV1().ConfigMaps(r.namespace).Delete(ctx, builderName, metav1.DeleteOptions{})
		}},
		{"secrets", func() error {
			return r.cs.CoreV1().Secrets(r.namespace).Delete(ctx, builderName+"-pull", metav1.DeleteOptions{})
		}},
	} {
		if err := del.delete(); err != nil && !apierrors.IsNotFound(err) {
			return r.explain(err, "delete", del.resource)
		}
	}
	claims := r.cs.CoreV1().PersistentVolumeClaims(r.namespace)
	return r.deleteAndWait(ctx, "persistentvolumeclaims", builderClaim,
		func(ctx context.Context) error { return claims.Delete(ctx, builderClaim, metav1.DeleteOptions{}) },
		func(ctx context.Context) error {
			_, err := claims.Get(ctx, builderClaim, metav1.GetOptions{})
			return err
		})
}

func (r *Runtime) deleteBuilderPod(ctx context.Context) error {
	pods := r.cs.CoreV1().Pods(r.namespace)
	return r.deleteAndWait(ctx, "pods", builderName,
		func(ctx context.Context) error { return pods.Delete(ctx, builderName, metav1.DeleteOptions{}) },
		func(ctx context.Context) error { _, err := pods.Get(ctx, builderName, metav1.GetOptions{}); return err })
}
