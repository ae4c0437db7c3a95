package builderctx

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	cert := filepath.Join(dir, "cert.pem")
	key := filepath.Join(dir, "key.pem")
	for _, f := range []string{ca, cert, key} {
		os.WriteFile(f, []byte("x"), 0o600)
	}
	tcp := "tcp://10.0.0.5:1234"

	tests := []struct {
		name    string
		c       Context
		wantErr error
		errHas  string
	}{
		{"managed", Context{Name: "local", Builder: "managed"}, nil, ""},
		{"empty builder is managed", Context{Name: "local2"}, nil, ""},
		{"managed in a container", Context{Name: "local3", Builder: "managed-container"}, nil, ""},
		{"unix", Context{Name: "sock", Builder: "unix:///run/buildkit/buildkitd.sock"}, nil, ""},
		{"tcp", Context{Name: "ci", Builder: tcp}, nil, ""},
		{"tcp ipv6", Context{Name: "ci6", Builder: "tcp://[::1]:1234"}, nil, ""},
		{"tcp tls", Context{Name: "ci-tls", Builder: tcp, TLS: &TLS{CACert: ca, Cert: cert, Key: key}}, nil, ""},
		{"tcp tls server name only", Context{Name: "ci_sys", Builder: tcp, TLS: &TLS{ServerName: "bk.corp"}}, nil, ""},
		{"docker-container", Context{Name: "dc", Builder: "docker-container://buildkitd"}, nil, ""},
		{"docker-container with docker context", Context{Name: "dc2", Builder: "docker-container://buildkitd?context=remote"}, nil, ""},
		{"digit first", Context{Name: "0ci", Builder: tcp}, nil, ""},
		{"kubernetes", Context{Name: "k8s", Runtime: RuntimeKubernetes, Kube: &Kube{Registry: "reg.example.com/ml", Namespace: "team"}}, nil, ""},
		{"kubernetes, registry with a port", Context{Name: "k8s2", Runtime: RuntimeKubernetes, Kube: &Kube{Registry: "127.0.0.1:5000/envd/"}}, nil, ""},
		{"kubernetes with its kubeconfig", Context{Name: "k8s3", Runtime: RuntimeKubernetes, Kube: &Kube{Registry: "reg", Kubeconfig: ca}}, nil, ""},
		{"kubernetes, building there", Context{Name: "k8s4", Builder: "kube-pod", Runtime: RuntimeKubernetes, Kube: &Kube{Registry: "reg"}}, nil, ""},
		{"docker said", Context{Name: "dk", Runtime: RuntimeDocker}, nil, ""},
		{"ssh", Context{Name: "gpu", Runtime: "ssh://alice@gpu.example.org:2222"}, nil, ""},
		{"ssh to an alias", Context{Name: "gpu2", Runtime: "ssh://gpu-box"}, nil, ""},
		{"ssh with a builder of its own", Context{Name: "gpu", Runtime: "ssh://gpu", Builder: "tcp://10.0.0.5:1234"}, ErrInvalid, "managed builder on the server"},
		{"ssh with a password", Context{Name: "gpu", Runtime: "ssh://a:b@gpu"}, ErrInvalid, "never takes a password"},
		{"ssh with cluster settings", Context{Name: "gpu", Runtime: "ssh://gpu", Kube: &Kube{Registry: "reg"}}, ErrInvalid, "for --runtime kubernetes"},
		{"podman", Context{Name: "pod", Runtime: "podman"}, nil, ""},
		{"podman with its socket", Context{Name: "pod", Runtime: "podman", Podman: &Podman{Socket: "unix:///run/user/5/podman/podman.sock"}}, nil, ""},
		{"podman with a builder of its own", Context{Name: "pod", Runtime: "podman", Builder: "tcp://10.0.0.5:1234"}, ErrInvalid, "managed builder in Podman"},
		{"podman with cluster settings", Context{Name: "pod", Runtime: "podman", Kube: &Kube{Registry: "reg"}}, ErrInvalid, "for --runtime kubernetes"},
		{"a podman socket for docker", Context{Name: "pod", Podman: &Podman{Socket: "/run/podman/podman.sock"}}, ErrInvalid, "for --runtime podman"},
		{"ssh, no scheme", Context{Name: "gpu", Runtime: "ssh"}, ErrInvalid, "ssh://USER@HOST"},
		{"kubernetes without a registry", Context{Name: "k", Runtime: RuntimeKubernetes}, ErrInvalid, "needs a registry"},
		{"registry with a scheme", Context{Name: "k", Runtime: RuntimeKubernetes, Kube: &Kube{Registry: "https://reg"}}, ErrInvalid, "invalid registry"},
		{"kubeconfig missing", Context{Name: "k", Runtime: RuntimeKubernetes, Kube: &Kube{Registry: "reg", Kubeconfig: filepath.Join(dir, "nope")}}, ErrInvalid, "kubeconfig"},
		{"cluster settings on docker", Context{Name: "k", Kube: &Kube{Registry: "reg"}}, ErrInvalid, "are for --runtime kubernetes"},
		{"unknown runtime", Context{Name: "k", Runtime: "lxc"}, ErrInvalid, "unknown runtime"},

		{"empty name", Context{Builder: tcp}, ErrInvalid, "invalid context name"},
		{"upper case", Context{Name: "CI", Builder: tcp}, ErrInvalid, "invalid context name"},
		{"leading dash", Context{Name: "-ci", Builder: tcp}, ErrInvalid, "invalid context name"},
		{"slash", Context{Name: "a/b", Builder: tcp}, ErrInvalid, "invalid context name"},
		{"too long", Context{Name: strings.Repeat("a", 64), Builder: tcp}, ErrInvalid, "at most 63"},
		{"default is reserved", Context{Name: "default", Builder: tcp}, ErrBuiltin, "built in"},
		{"no scheme", Context{Name: "x", Builder: "10.0.0.5:1234"}, ErrInvalid, "no scheme"},
		{"bare path", Context{Name: "x", Builder: "/run/bk.sock"}, ErrInvalid, "unix:///run/bk.sock"},
		{"unknown scheme", Context{Name: "x", Builder: "ssh://host"}, ErrInvalid, `unknown scheme "ssh"`},
		{"kube-pod with an address", Context{Name: "x", Builder: "kube-pod://bk"}, ErrInvalid, "kube-pod takes no address"},
		{"kube-pod without a cluster", Context{Name: "x", Builder: "kube-pod"}, ErrInvalid, "needs --runtime kubernetes"},
		{"unix two slashes", Context{Name: "x", Builder: "unix://run/bk.sock"}, ErrInvalid, "absolute path"},
		{"unix no path", Context{Name: "x", Builder: "unix://"}, ErrInvalid, "absolute path"},
		{"tcp no port", Context{Name: "x", Builder: "tcp://10.0.0.5"}, ErrInvalid, "host and a port"},
		{"tcp bad port", Context{Name: "x", Builder: "tcp://10.0.0.5:99999"}, ErrInvalid, "host and a port"},
		{"tcp no host", Context{Name: "x", Builder: "tcp://:1234"}, ErrInvalid, "host and a port"},
		{"tcp path", Context{Name: "x", Builder: "tcp://h:1234/x"}, ErrInvalid, "only a host and port"},
		{"docker-container no name", Context{Name: "x", Builder: "docker-container://"}, ErrInvalid, "container name"},
		{"bad url", Context{Name: "x", Builder: "tcp://h:12%zz"}, ErrInvalid, "invalid builder"},
		{"tls with unix", Context{Name: "x", Builder: "unix:///run/bk.sock", TLS: &TLS{CACert: ca}}, ErrInvalid, "tcp:// builders only"},
		{"tls with managed", Context{Name: "x", TLS: &TLS{CACert: ca}}, ErrInvalid, "tcp:// builders only"},
		{"tls with docker-container", Context{Name: "x", Builder: "docker-container://b", TLS: &TLS{CACert: ca}}, ErrInvalid, "tcp:// builders only"},
		{"tls empty", Context{Name: "x", Builder: tcp, TLS: &TLS{}}, ErrInvalid, "empty TLS"},
		{"tls cert without key", Context{Name: "x", Builder: tcp, TLS: &TLS{Cert: cert}}, ErrInvalid, "go together"},
		{"tls key without cert", Context{Name: "x", Builder: tcp, TLS: &TLS{Key: key}}, ErrInvalid, "go together"},
		{"tls missing ca", Context{Name: "x", Builder: tcp, TLS: &TLS{CACert: filepath.Join(dir, "nope.pem")}}, ErrInvalid, "nope.pem: no such file"},
		{"tls missing key", Context{Name: "x", Builder: tcp, TLS: &TLS{Cert: cert, Key: filepath.Join(dir, "nokey")}}, ErrInvalid, "nokey"},
		{"tls dir as file", Context{Name: "x", Builder: tcp, TLS: &TLS{CACert: dir}}, ErrInvalid, "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := validate(tt.c)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.errHas) {
				t.Fatalf("err = %v, want %v containing %q", err, tt.wantErr, tt.errHas)
			}
			if !strings.Contains(err.Error(), "hint:") {
				t.Errorf("no hint in %q", err)
			}
		})
	}
}

func TestValidateNormalises(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	os.WriteFile("ca.pem", []byte("x"), 0o600)
	c, err := validate(Context{Name: "ci", Builder: "tcp://h:1", TLS: &TLS{CACert: "ca.pem"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.TLS.CACert != filepath.Join(dir, "ca.pem") {
		t.Errorf("CA path not made absolute: %q", c.TLS.CACert)
	}
	if c, _ := validate(Context{Name: "m"}); c.Builder != Managed || !c.IsManaged() {
		t.Errorf("empty builder: %+v", c)
	}
}

func TestManagedInContainer(t *testing.T) {
	for _, tc := range []struct {
		builder string
		euid    int
		want    bool
	}{
		{"managed", 0, false},   // root keeps the process
		{"managed", 4321, true}, // a user who is not root gets the container
		{"", 4321, true},
		{"managed-container", 0, true}, // root asked for it
		{"unix:///run/buildkit/buildkitd.sock", 4321, false},
	} {
		if got := (Context{Builder: tc.builder}).ManagedInContainer(tc.euid); got != tc.want {
			t.Errorf("%q as %d: ManagedInContainer = %v, want %v", tc.builder, tc.euid, got, tc.want)
		}
	}
}
