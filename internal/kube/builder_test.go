package kube

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
)

func builderSpec() BuilderSpec {
	return BuilderSpec{
		Image: "reg/envd-buildkit@sha256:abc", Config: []byte("root = \"/var/lib/buildkit\"\n"),
		ConfigPath: "/etc/buildkit/buildkitd.toml", RootDir: "/var/lib/buildkit", Socket: "/run/buildkit/buildkitd.sock",
		CacheSize: resource.MustParse("50Gi"),
	}
}

func TestBuilderPodFor(t *testing.T) {
	s := builderSpec()
	s.HostNetwork, s.PullAuth = true, []byte(`{"auths":{}}`)
	p := builderPodFor(s, s.hash())
	c := p.Spec.Containers[0]
	for _, tc := range []struct {
		what      string
		got, want any
	}{
		{"name", p.Name, "envd-buildkitd"},
		{"not an environment", p.Labels[LabelName], ""},
		{"image", c.Image, s.Image},
		{"args", c.Args, []string{"--config", s.ConfigPath, "--addr", "unix://" + s.Socket}},
		{"privileged", *c.SecurityContext.Privileged, true},
		{"config dir", c.VolumeMounts[0].MountPath, "/etc/buildkit"},
		{"cache on the claim", p.Spec.Volumes[1].PersistentVolumeClaim.ClaimName, "envd-buildkitd-cache"},
		{"socket dir", c.VolumeMounts[2].MountPath, "/run/buildkit"},
		{"probe asks buildkitd", c.StartupProbe.Exec.Command, []string{"buildctl", "--addr", "unix://" + s.Socket, "debug", "workers"}},
		{"host network", p.Spec.HostNetwork, true},
		{"cluster DNS on the host network", p.Spec.DNSPolicy, corev1.DNSClusterFirstWithHostNet},
		{"no API token", *p.Spec.AutomountServiceAccountToken, false},
		{"pull secret", p.Spec.ImagePullSecrets[0].Name, "envd-buildkitd-pull"},
		{"spec hash", p.Annotations[annotationBuilderSpec], s.hash()},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.what, tc.got, tc.want)
		}
	}
}

// What the pod is made of changes its hash (so it is recreated); the
// mirror alone is in the config, and the log function is no part of it.
func TestBuilderSpecHash(t *testing.T) {
	base := builderSpec()
	for _, tc := range []struct {
		name   string
		change func(*BuilderSpec)
		same   bool
	}{
		{"image", func(s *BuilderSpec) { s.Image = "reg/other@sha256:def" }, false},
		{"config", func(s *BuilderSpec) { s.Config = []byte("root = \"/x\"\n") }, false},
		{"host network", func(s *BuilderSpec) { s.HostNetwork = true }, false},
		{"socket", func(s *BuilderSpec) { s.Socket = "/run/x.sock" }, false},
		{"log function", func(s *BuilderSpec) { s.Logf = t.Logf }, true},
		{"cache size", func(s *BuilderSpec) { s.CacheSize = resource.MustParse("1Gi") }, true},
	} {
		s := base
		tc.change(&s)
		if got := s.hash() == base.hash(); got != tc.same {
			t.Errorf("%s: same hash %v, want %v", tc.name, got, tc.same)
		}
	}
}

// A pod that never gets ready because its image cannot be pulled is
// removed, with the reason; the claim and the config it needs stay.
func TestEnsureBuilderRemovesAPodThatCannotPull(t *testing.T) {
	cs := fake.NewClientset(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns"}})
	r := &Runtime{cs: cs, cfg: &rest.Config{Host: "https://k"}, namespace: "ns", poll: time.Millisecond}
	go func() {
		// The kubelet's part: the pull fails.
		for {
			p, err := cs.CoreV1().Pods("ns").Get(context.Background(), builderName, metav1.GetOptions{})
			if err == nil {
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: builderContainer, State: corev1.ContainerState{
					Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "not found"}}}}
				cs.CoreV1().Pods("ns").UpdateStatus(context.Background(), p, metav1.UpdateOptions{})
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	err := r.EnsureBuilder(context.Background(), builderSpec(), time.Minute)
	if err == nil || !strings.Contains(err.Error(), "cannot pull the builder image reg/envd-buildkit@sha256:abc") {
		t.Fatalf("want a pull error, got %v", err)
	}
	if _, err := cs.CoreV1().Pods("ns").Get(context.Background(), builderName, metav1.GetOptions{}); err == nil {
		t.Error("the pod that could not pull was left behind")
	}
	if _, err := cs.CoreV1().PersistentVolumeClaims("ns").Get(context.Background(), builderClaim, metav1.GetOptions{}); err != nil {
		t.Errorf("the cache claim: %v", err)
	}
}
