package kube

import (
	"context"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"

	"envd.dev/envd/internal/contract"
	"envd.dev/envd/internal/runtime"
)

func TestPodFor(t *testing.T) {
	s := Spec{
		Name: "demo", Image: "reg/x@sha256:abc", SecretDir: "/run/envd", ProjectDir: "/home/envd/demo",
		Env: map[string]string{"B": "2", "A": "1"}, Ports: []int{2222, 8888},
		GPUs: 2, CPUs: 1.5, Memory: 8 << 30, ShmSize: 2 << 30, PullAuth: []byte(`{"auths":{}}`),
	}
	p := podFor(s)
	c := p.Spec.Containers[0]
	for _, tc := range []struct {
		what      string
		got, want any
	}{
		{"name", p.Name, "envd-demo"},
		{"label", p.Labels[LabelName], "demo"},
		{"image", c.Image, "reg/x@sha256:abc"},
		{"env order", c.Env[0].Name + c.Env[1].Name, "AB"},
		{"gpu limit", c.Resources.Limits.Name(GPUResource, resource.DecimalSI).String(), "2"},
		{"cpu request", c.Resources.Requests.Cpu().String(), "1500m"},
		{"memory limit", c.Resources.Limits.Memory().String(), "8Gi"},
		{"no API token", *p.Spec.AutomountServiceAccountToken, false},
		{"no service links", *p.Spec.EnableServiceLinks, false},
		{"secret mode", *p.Spec.Volumes[0].Secret.DefaultMode, int32(0o400)},
		{"claim", p.Spec.Volumes[1].PersistentVolumeClaim.ClaimName, "envd-demo-project"},
		{"shm medium", p.Spec.Volumes[2].EmptyDir.Medium, corev1.StorageMediumMemory},
		{"shm size", p.Spec.Volumes[2].EmptyDir.SizeLimit.String(), "2Gi"},
		{"shm mount", c.VolumeMounts[2].MountPath, "/dev/shm"},
		{"pull secret", p.Spec.ImagePullSecrets[0].Name, "envd-demo-pull"},
		{"runs as root", *c.SecurityContext.RunAsUser, int64(0)},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.what, tc.got, tc.want)
		}
	}
	if plain := podFor(Spec{Name: "p"}); len(plain.Spec.Volumes) != 2 || plain.Spec.Containers[0].Resources.Limits != nil {
		t.Errorf("a spec without resources or shm: volumes %d, limits %v", len(plain.Spec.Volumes), plain.Spec.Containers[0].Resources.Limits)
	}
}

func TestDiagnose(t *testing.T) {
	r := &Runtime{cs: fake.NewSimpleClientset(), cfg: &rest.Config{Host: "https://k"}, namespace: "ns"}
	waiting := func(reason, msg string) corev1.PodStatus {
		return corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: containerName, State: corev1.ContainerState{
			Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg},
		}}}}
	}
	for _, tc := range []struct {
		name    string
		spec    Spec
		status  corev1.PodStatus
		running bool
		want    string // in the error; "" no error
	}{
		{"pending", Spec{}, corev1.PodStatus{Phase: corev1.PodPending}, false, ""},
		{"running", Spec{}, corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: containerName, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}}, true, ""},
		{"pull without a login", Spec{Image: "reg.example:5000/ml/img@sha256:1"}, waiting("ImagePullBackOff", "401 Unauthorized"), false,
			"cannot pull the image reg.example:5000/ml/img@sha256:1 from the registry reg.example:5000, without credentials: your Docker config has no login for reg.example:5000"},
		{"pull with a login", Spec{Name: "x", Image: "reg/img", PullAuth: []byte("{}"), PullAuthSource: "~/.docker/config.json (auths)"}, waiting("ErrImagePull", "403 Forbidden"), false,
			"with your login from ~/.docker/config.json (auths) (as the pod's pull secret envd-x-pull): 403 Forbidden"},
		{"config", Spec{}, waiting("CreateContainerConfigError", "secret not found"), false, "could not start the environment's container"},
		{"crash", Spec{}, waiting("CrashLoopBackOff", ""), false, "agent exited while starting"},
		{"gpu", Spec{Name: "g", GPUs: 1}, corev1.PodStatus{Conditions: []corev1.PodCondition{{
			Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable,
			Message: "0/1 nodes are available: 1 Insufficient nvidia.com/gpu.",
		}}}, false, "Insufficient nvidia.com/gpu.\n  hint: it asks for 1 nvidia.com/gpu"},
		{"claim being provisioned", Spec{Name: "c"}, corev1.PodStatus{Conditions: []corev1.PodCondition{{
			Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable,
			Message: "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims.",
		}}}, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "envd-x"}, Status: tc.status}
			running, err := r.diagnose(context.Background(), tc.spec, pod)
			if running != tc.running {
				t.Errorf("running = %v, want %v", running, tc.running)
			}
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("error %v, want none", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want it to say %q", err, tc.want)
			}
		})
	}
}

// podSpec: envd's spec in the cluster's terms.
func TestPodSpec(t *testing.T) {
	e := &Envs{PullAuth: []byte("{}"), PullAuthSource: "~/.docker/config.json (auths)"}
	ks, err := e.podSpec(runtime.Spec{
		Name: "demo", Image: "reg/demo@sha256:1", GPUs: "all",
		Project: runtime.Project{HostDir: "/home/me/demo", Path: "/home/envd/demo"},
		Ports:   []runtime.Port{{Name: "ssh", ContainerPort: 2222}, {Name: "jupyter", ContainerPort: 8888}},
		Labels:  map[string]string{contract.LabelProjectDir: "/home/me/demo", contract.LabelForwardAgent: "true"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what string
		got  any
		want any
	}{
		{"gpus: all is one", ks.GPUs, 1},
		{"project dir", ks.ProjectDir, "/home/envd/demo"},
		{"secret dir", ks.SecretDir, contract.RunDir},
		{"group", ks.Group, int64(contract.DevUID)},
		{"ports", ks.Ports, []int{2222, 8888}},
		{"a path is an annotation", ks.Annotations[contract.LabelProjectDir], "/home/me/demo"},
		{"a word is a label", ks.Labels[contract.LabelForwardAgent], "true"},
		{"pull auth", string(ks.PullAuth), "{}"},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: %v, want %v", c.what, c.got, c.want)
		}
	}
	p := podFor(ks)
	if p.Spec.SecurityContext == nil || *p.Spec.SecurityContext.FSGroup != contract.DevUID || *p.Spec.Volumes[0].Secret.DefaultMode != 0o440 {
		t.Errorf("the dev user cannot read the secrets: %+v", p.Spec.SecurityContext)
	}
	if _, err := e.podSpec(runtime.Spec{Name: "x", GPUs: "two"}); err == nil {
		t.Error("--gpus two accepted")
	}
}
