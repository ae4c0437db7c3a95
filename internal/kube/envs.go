package kube

import (
	"context"
	"fmt"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"envd.dev/envd/internal/contract"
	"envd.dev/envd/internal/runtime"
)

// Envs is the cluster as a runtime.Runtime: images are pushed to a registry
// the nodes pull from, the project is copied into a claim, and every way in
// is the API server's port-forward.
type Envs struct {
	*Runtime
	// ProjectSize and StorageClass are the claims' ("" the default class).
	ProjectSize  resource.Quantity
	StorageClass string
	// PullAuth and PullAuthSource: the user's login to the registry, as a
	// .dockerconfigjson, for the pods' pull secret (nil: none).
	PullAuth       []byte
	PullAuthSource string
}

var (
	_ runtime.Runtime   = (*Envs)(nil)
	_ runtime.Destroyer = (*Envs)(nil)
	_ runtime.Synced    = (*Envs)(nil)
)

func (e *Envs) Kind() string                      { return "kubernetes" }
func (e *Envs) Delivery() runtime.Delivery        { return runtime.DeliverPush }
func (e *Envs) Project() runtime.ProjectTransport { return runtime.ProjectCopied }

// defaultStartTimeout covers scheduling and a first pull of a large image.
const defaultStartTimeout = 5 * time.Minute

// Start makes the claim (kept from an earlier up), the secret and the pod.
func (e *Envs) Start(ctx context.Context, s runtime.Spec) (*runtime.Env, error) {
	ks, err := e.podSpec(s)
	if err != nil {
		return nil, err
	}
	timeout := s.StartTimeout
	if timeout == 0 {
		timeout = defaultStartTimeout
	}
	env, err := e.Runtime.Start(ctx, ks, timeout)
	if err != nil {
		return nil, err
	}
	return toEnv(env), nil
}

// podSpec turns envd's spec into the cluster's terms.
func (e *Envs) podSpec(s runtime.Spec) (Spec, error) {
	ks := Spec{
		Name: s.Name, Image: s.Image, Secrets: s.Secrets, SecretDir: contract.RunDir, Group: contract.DevUID,
		ProjectDir: s.Project.Path, ProjectSize: e.ProjectSize, StorageClass: e.StorageClass,
		Env: s.Env, CPUs: s.CPUs, Memory: s.Memory, ShmSize: s.ShmSize,
		Labels: map[string]string{}, Annotations: map[string]string{},
		PullAuth: e.PullAuth, PullAuthSource: e.PullAuthSource,
	}
	switch s.GPUs {
	case "":
	case "all":
		ks.GPUs = 1 // a pod asks for a number; "all" of a node is not one
	default:
		n, err := strconv.Atoi(s.GPUs)
		if err != nil || n < 1 {
			return Spec{}, fmt.Errorf("--gpus %q: give a number of GPUs", s.GPUs)
		}
		ks.GPUs = n
	}
	for _, p := range s.Ports {
		ks.Ports = append(ks.Ports, p.ContainerPort)
	}
	// Label values are short words; paths and the like are annotations.
	for k, v := range s.Labels {
		if len(validation.IsValidLabelValue(v)) == 0 {
			ks.Labels[k] = v
		} else {
			ks.Annotations[k] = v
		}
	}
	return ks, nil
}

func (e *Envs) Get(ctx context.Context, name string) (*runtime.Env, error) {
	env, err := e.Runtime.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	return toEnv(env), nil
}

func (e *Envs) List(ctx context.Context) ([]runtime.Env, error) {
	envs, err := e.Runtime.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]runtime.Env, 0, len(envs))
	for i := range envs {
		out = append(out, *toEnv(&envs[i]))
	}
	return out, nil
}

// Remove is down: the pod and the secret go, the claim with the work stays.
func (e *Envs) Remove(ctx context.Context, name string) error { return e.Runtime.Down(ctx, name) }

// Destroy removes the claim too; runtime.ErrNotFound when there is none.
func (e *Envs) Destroy(ctx context.Context, name string) error {
	_, err := e.cs.CoreV1().PersistentVolumeClaims(e.namespace).Get(ctx, claimName(name), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return runtime.ErrNotFound
	}
	if err != nil {
		return e.explain(err, "get", "persistentvolumeclaims")
	}
	return e.Runtime.Destroy(ctx, name)
}

func toEnv(k *Env) *runtime.Env {
	e := &runtime.Env{
		Name: k.Name, ID: k.Pod, Image: k.Image, Status: k.Status, Running: k.Running,
		Created: k.Created, Labels: k.Labels, ProjectDir: k.Labels[contract.LabelProjectDir],
	}
	for _, p := range k.Ports {
		e.Ports = append(e.Ports, runtime.Port{ContainerPort: p})
	}
	return e
}
