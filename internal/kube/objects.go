// Package kube runs envd environments in a Kubernetes cluster: a Pod whose
// PID 1 is envd's agent, a Secret with what the agent must not find in the
// image (keys, its config), and a PersistentVolumeClaim for the project, all
// labelled with the environment's name in one namespace. The environment is
// reached through the API server's port-forward, never a Service or a node
// port, so nothing listens on the network that was not there before.
package kube

import (
	"fmt"
	"maps"
	"sort"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Labels and annotations envd puts on its objects.
const (
	LabelName      = "dev.envd.name"
	LabelManagedBy = "app.kubernetes.io/managed-by"
	managedBy      = "envd"
	// AnnotationSynced on the claim records that the project was copied in,
	// so a later up does not overwrite work done in the environment.
	AnnotationSynced = "dev.envd.project-synced"
	// GPUResource is what the NVIDIA device plugin advertises.
	GPUResource corev1.ResourceName = "nvidia.com/gpu"

	containerName = "env"
	secretVolume  = "envd-secret"
	projectVolume = "project"
	shmVolume     = "dshm"
)

// Spec is one environment to start, in the terms the cluster needs.
type Spec struct {
	Name  string
	Image string // a reference the nodes can pull, by digest
	// Secrets are files the agent reads at SecretDir: root's, and readable
	// by the group Group (the dev user's, which the agent drops to), if set.
	Secrets   map[string][]byte
	SecretDir string
	Group     int64
	// ProjectDir is where the claim is mounted; ProjectSize its request.
	ProjectDir  string
	ProjectSize resource.Quantity
	// StorageClass for the claim; "" is the cluster's default.
	StorageClass string
	Env          map[string]string
	Ports        []int // container ports, for the record (port-forward reaches any)
	GPUs         int   // nvidia.com/gpu limit; 0 none
	CPUs         float64
	Memory       int64 // bytes
	ShmSize      int64 // bytes of a memory-backed /dev/shm; 0 the runtime's default
	Labels       map[string]string
	// Annotations go on the pod: what is not a label value (paths).
	Annotations map[string]string
	// PullAuth is a .dockerconfigjson with the user's login to the image's
	// registry: envd makes it the pod's pull secret. PullAuthSource says
	// where the login came from, for messages ("" none was found).
	PullAuth       []byte
	PullAuthSource string
}

// Object names: one of each kind per environment.
func podName(env string) string        { return "envd-" + env }
func secretName(env string) string     { return "envd-" + env }
func claimName(env string) string      { return "envd-" + env + "-project" }
func pullSecretName(env string) string { return "envd-" + env + "-pull" }

func labels(s Spec) map[string]string {
	l := map[string]string{}
	maps.Copy(l, s.Labels)
	l[LabelName] = s.Name
	l[LabelManagedBy] = managedBy
	return l
}

func secretFor(s Spec) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: secretName(s.Name), Labels: labels(s)},
		Type:       corev1.SecretTypeOpaque,
		Data:       s.Secrets,
	}
}

func pullSecretFor(s Spec) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: pullSecretName(s.Name), Labels: labels(s)},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: s.PullAuth},
	}
}

func claimFor(s Spec) *corev1.PersistentVolumeClaim {
	size := s.ProjectSize
	if size.IsZero() {
		size = resource.MustParse("10Gi")
	}
	c := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: claimName(s.Name), Labels: labels(s)},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceStorage: size},
			},
		},
	}
	if s.StorageClass != "" {
		c.Spec.StorageClassName = &s.StorageClass
	}
	return c
}

func podFor(s Spec) *corev1.Pod {
	var env []corev1.EnvVar
	for _, k := range sortedKeys(s.Env) {
		env = append(env, corev1.EnvVar{Name: k, Value: s.Env[k]})
	}
	var ports []corev1.ContainerPort
	for _, p := range s.Ports {
		ports = append(ports, corev1.ContainerPort{Name: "p" + strconv.Itoa(p), ContainerPort: int32(p), Protocol: corev1.ProtocolTCP})
	}
	readOnly := int32(0o400)
	if s.Group != 0 {
		readOnly = 0o440
	}
	root := int64(0)
	grace := int64(10)
	no := false
	c := corev1.Container{
		Name:            containerName,
		Image:           s.Image,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Env:             env,
		Ports:           ports,
		Resources:       resourcesFor(s),
		// The agent starts as root to give the dev user the host user's
		// UID, then drops to it (as with Docker).
		SecurityContext: &corev1.SecurityContext{RunAsUser: &root},
		VolumeMounts: []corev1.VolumeMount{
			{Name: secretVolume, MountPath: s.SecretDir, ReadOnly: true},
			{Name: projectVolume, MountPath: s.ProjectDir},
		},
	}
	volumes := []corev1.Volume{
		{Name: secretVolume, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: secretName(s.Name), DefaultMode: &readOnly,
		}}},
		{Name: projectVolume, VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{
			ClaimName: claimName(s.Name),
		}}},
	}
	if s.ShmSize > 0 {
		size := resource.NewQuantity(s.ShmSize, resource.BinarySI)
		volumes = append(volumes, corev1.Volume{Name: shmVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
			Medium: corev1.StorageMediumMemory, SizeLimit: size,
		}}})
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: shmVolume, MountPath: "/dev/shm"})
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: podName(s.Name), Labels: labels(s), Annotations: s.Annotations},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{c},
			Volumes:    volumes,
			// The environment is the user's, not the cluster's: no API
			// token inside, no service variables in its environment.
			AutomountServiceAccountToken:  &no,
			EnableServiceLinks:            &no,
			TerminationGracePeriodSeconds: &grace,
			RestartPolicy:                 corev1.RestartPolicyAlways,
		},
	}
	if s.Group != 0 {
		p.Spec.SecurityContext = &corev1.PodSecurityContext{FSGroup: &s.Group}
	}
	if s.PullAuth != nil {
		p.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: pullSecretName(s.Name)}}
	}
	return p
}

// resourcesFor: CPUs and memory are both request and limit, so the
// environment gets what the user asked for or is not scheduled.
func resourcesFor(s Spec) corev1.ResourceRequirements {
	r := corev1.ResourceRequirements{}
	set := func(name corev1.ResourceName, q resource.Quantity) {
		if r.Limits == nil {
			r.Limits, r.Requests = corev1.ResourceList{}, corev1.ResourceList{}
		}
		r.Limits[name], r.Requests[name] = q, q
	}
	if s.CPUs > 0 {
		set(corev1.ResourceCPU, *resource.NewMilliQuantity(int64(s.CPUs*1000), resource.DecimalSI))
	}
	if s.Memory > 0 {
		set(corev1.ResourceMemory, *resource.NewQuantity(s.Memory, resource.BinarySI))
	}
	if s.GPUs > 0 {
		set(GPUResource, *resource.NewQuantity(int64(s.GPUs), resource.DecimalSI))
	}
	return r
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// selector finds one environment's objects, or all of envd's.
func selector(name string) string {
	if name == "" {
		// Environments only: the builder's objects have no name label.
		return LabelManagedBy + "=" + managedBy + "," + LabelName
	}
	return fmt.Sprintf("%s=%s,%s=%s", LabelManagedBy, managedBy, LabelName, name)
}
