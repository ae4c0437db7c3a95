package runtime

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/network"
)

func TestContainerConfig(t *testing.T) {
	s := Spec{
		Name:    "mnist",
		Image:   "mnist:dev",
		Project: Project{HostDir: "/home/me/mnist", Path: "/home/envd/mnist"},
		Mounts:  []Mount{{Source: "/data", Target: "/data", ReadOnly: true}},
		Ports: []Port{
			{Name: "ssh", ContainerPort: 2222},
			{Name: "streamlit", ContainerPort: 8501, HostPort: 8501},
			{Name: "public", ContainerPort: 9000, HostIP: "0.0.0.0", HostPort: 9000},
		},
		Env:     map[string]string{"B": "2", "A": "1"},
		GPUs:    "all",
		CPUs:    1.5,
		Memory:  2 << 30,
		ShmSize: 1 << 30,
	}
	opts, err := containerConfig(s, "/var/lib/envd/mnist")
	if err != nil {
		t.Fatal(err)
	}
	if opts.Name != "envd-mnist" || opts.Config.Labels[LabelName] != "mnist" {
		t.Errorf("name %q labels %v", opts.Name, opts.Config.Labels)
	}
	if strings.Join(opts.Config.Env, " ") != "A=1 B=2" {
		t.Errorf("env %v", opts.Config.Env)
	}
	h := opts.HostConfig
	if strings.Join(h.Binds, " ") != "/home/me/mnist:/home/envd/mnist /var/lib/envd/mnist:/run/envd:ro /data:/data:ro" {
		t.Errorf("binds %v", h.Binds)
	}
	ssh := h.PortBindings[network.MustParsePort("2222/tcp")]
	if len(ssh) != 1 || ssh[0].HostIP.String() != "127.0.0.1" || ssh[0].HostPort != "" {
		t.Errorf("ssh binding %+v: want loopback and a port Docker picks", ssh)
	}
	if b := h.PortBindings[network.MustParsePort("8501/tcp")]; len(b) != 1 || b[0].HostPort != "8501" || b[0].HostIP.String() != "127.0.0.1" {
		t.Errorf("streamlit binding %+v", b)
	}
	if b := h.PortBindings[network.MustParsePort("9000/tcp")]; b[0].HostIP.String() != "0.0.0.0" {
		t.Errorf("listen_addr not honoured: %+v", b)
	}
	if h.NanoCPUs != 1_500_000_000 || h.Memory != 2<<30 || h.ShmSize != 1<<30 {
		t.Errorf("resources cpus %d mem %d shm %d", h.NanoCPUs, h.Memory, h.ShmSize)
	}
	if len(h.DeviceRequests) != 1 || h.DeviceRequests[0].Driver != "nvidia" || h.DeviceRequests[0].Count != -1 || h.DeviceRequests[0].Capabilities[0][0] != "gpu" {
		t.Errorf("device requests %+v", h.DeviceRequests)
	}
}

func TestContainerConfigGPUs(t *testing.T) {
	tests := []struct {
		gpus  string
		count int // 0 = no request
		err   string
	}{
		{"", 0, ""},
		{"all", -1, ""},
		{"2", 2, ""},
		{"0", 0, "give a number of GPUs or all"},
		{"many", 0, "give a number of GPUs or all"},
	}
	for _, tt := range tests {
		opts, err := containerConfig(Spec{Name: "x", Image: "x", GPUs: tt.gpus}, "/state")
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("gpus %q: err %v, want %q", tt.gpus, err, tt.err)
			}
			continue
		}
		reqs := opts.HostConfig.DeviceRequests
		switch {
		case tt.count == 0 && len(reqs) != 0:
			t.Errorf("gpus %q: unexpected request %+v", tt.gpus, reqs)
		case tt.count != 0 && (len(reqs) != 1 || reqs[0].Count != tt.count):
			t.Errorf("gpus %q: requests %+v, want count %d", tt.gpus, reqs, tt.count)
		}
	}
}

func TestStartErrors(t *testing.T) {
	s := Spec{Ports: []Port{{ContainerPort: 8501, HostPort: 8501}}}
	err := (&Docker{}).startError(errString("driver failed programming external connectivity: Bind for 127.0.0.1:8501 failed: port is already allocated"), s)
	if pe, ok := err.(*PortInUseError); !ok || pe.Addr != "127.0.0.1:8501" {
		t.Errorf("got %v", err)
	}
	err = (&Docker{}).startError(errString(`could not select device driver "nvidia" with capabilities: [[gpu]]`), s)
	if _, ok := err.(*NoGPURuntimeError); !ok || !strings.Contains(err.Error(), "--no-gpu") {
		t.Errorf("got %v", err)
	}
}

type errString string

func (e errString) Error() string { return string(e) }

// TestRestartAndPorts: a container comes back after a Docker restart, on
// the same host ports (Docker would pick new ones for HostPort 0).
func TestRestartAndPorts(t *testing.T) {
	s := Spec{Name: "x", Image: "x", Ports: []Port{{Name: "ssh", ContainerPort: 2222}, {Name: "web", ContainerPort: 80, HostPort: 8080}}}
	opts, err := containerConfig(s, "/state")
	if err != nil {
		t.Fatal(err)
	}
	if p := opts.HostConfig.RestartPolicy; p.Name != "unless-stopped" {
		t.Errorf("restart policy %+v, want unless-stopped", p)
	}
	pinned, err := pinPorts(s)
	if err != nil {
		t.Fatal(err)
	}
	if pinned.Ports[0].HostPort == 0 || pinned.Ports[1].HostPort != 8080 || s.Ports[0].HostPort != 0 {
		t.Errorf("pinned %+v from %+v: want a chosen ssh port, 8080 kept, the spec untouched", pinned.Ports, s.Ports)
	}
}

func TestSpecDigest(t *testing.T) {
	base := func() Spec {
		return Spec{Name: "x", Image: "x:dev", Env: map[string]string{"A": "1", "B": "2"}, Mounts: []Mount{{Source: "/p", Target: "/home/envd/p"}}}
	}
	d := SpecDigest(base())
	if SpecDigest(base()) != d {
		t.Fatal("digest of the same spec differs")
	}
	for name, change := range map[string]func(*Spec){
		"memory":  func(s *Spec) { s.Memory = 1 << 30 },
		"a mount": func(s *Spec) { s.Mounts = append(s.Mounts, Mount{Source: "/data", Target: "/data"}) },
		"read-only": func(s *Spec) {
			s.Mounts[0].ReadOnly = true
		},
		"gpus":    func(s *Spec) { s.GPUs = "all" },
		"host":    func(s *Spec) { s.Ports = []Port{{ContainerPort: 2222, HostIP: "0.0.0.0"}} },
		"project": func(s *Spec) { s.Project.HostDir = "/elsewhere" },
	} {
		s := base()
		change(&s)
		if SpecDigest(s) == d {
			t.Errorf("changing %s leaves the digest as it was", name)
		}
	}
	// A new Jupyter token at every up must not make a stopped one look different.
	s := base()
	s.Secrets = map[string][]byte{"agent.json": []byte("token")}
	if SpecDigest(s) != d {
		t.Error("secrets change the digest")
	}
}

// The state dir (host key, authorized keys, agent.json with the Jupyter
// token) is its owner's only, also when an older envd made it 0755.
func TestSecretsArePrivate(t *testing.T) {
	root := t.TempDir()
	d := NewDocker(nil, root)
	if err := os.MkdirAll(d.StateDir("proj"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := Spec{Name: "proj", Secrets: map[string][]byte{"agent.json": []byte(`{"token":"t"}`), "authorized_keys": []byte("k\n")}}
	if err := d.writeSecrets(s); err != nil {
		t.Fatal(err)
	}
	for f, want := range map[string]os.FileMode{"": 0o700, "agent.json": 0o600, "authorized_keys": 0o600} {
		fi, err := os.Stat(filepath.Join(d.StateDir("proj"), f))
		if err != nil || fi.Mode().Perm() != want {
			t.Errorf("%q: %v, mode %v; want %v", f, err, fi.Mode().Perm(), want)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(d.StateDir("proj"), "agent.json")); string(b) != `{"token":"t"}` {
		t.Errorf("agent.json = %q", b)
	}
}

// On a server nothing of this machine is mounted: the project is the
// server's volume, and ports are left to the server's Docker to pick.
func TestContainerConfigOnServer(t *testing.T) {
	s := Spec{
		Name: "mnist", Image: "mnist:dev",
		Project: Project{HostDir: "/home/me/mnist", Path: "/home/envd/mnist"},
		Ports:   []Port{{Name: "ssh", ContainerPort: 2222}},
	}
	d := NewRemoteDocker(nil, "ssh://gpu", nil).Docker
	pinned, err := d.pinPorts(s)
	if err != nil || pinned.Ports[0].HostPort != 0 {
		t.Fatalf("pinPorts on a server: %+v, %v; want the port left to its Docker", pinned.Ports, err)
	}
	opts, err := containerConfig(pinned, "")
	if err != nil {
		t.Fatal(err)
	}
	h := opts.HostConfig
	if len(h.Binds) != 0 {
		t.Errorf("binds %q: a server cannot see this machine's paths", h.Binds)
	}
	if len(h.Mounts) != 1 || h.Mounts[0].Source != "envd-mnist-project" || h.Mounts[0].Target != s.Project.Path || h.Mounts[0].Type != "volume" {
		t.Errorf("mounts %+v, want the volume envd-mnist-project at %s", h.Mounts, s.Project.Path)
	}
	for _, b := range h.PortBindings {
		if b[0].HostIP.String() != "127.0.0.1" || b[0].HostPort != "" {
			t.Errorf("port binding %+v, want the server's loopback and a port its Docker picks", b)
		}
	}
}

func TestServerPortsAreNotThisMachines(t *testing.T) {
	e := &Env{Ports: []Port{{ContainerPort: 2222, HostIP: "127.0.0.1", HostPort: 32768}}}
	hidePorts(e)
	if p := e.Port(2222); p == nil || p.HostPort != 0 {
		t.Errorf("ports %+v: a server's published port must not look like one of this machine", e.Ports)
	}
}
