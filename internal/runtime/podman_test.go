package runtime

import (
	"errors"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/network"

	"envd.dev/envd/internal/contract"
)

func TestPodmanAdapt(t *testing.T) {
	spec := Spec{Name: "mnist", Image: "mnist:dev", Project: Project{HostDir: "/home/me/mnist", Path: "/home/envd/mnist"},
		Ports: []Port{{Name: "ssh", ContainerPort: 2222, HostIP: "127.0.0.1", HostPort: 40001}, {Name: "web", ContainerPort: 8000, HostPort: 8000}}}
	tests := []struct {
		name        string
		mode        podmanMode
		gpus        string
		userns      string
		hostNetwork bool
		devices     []string
		err         string
	}{
		{name: "rootful, bridge", mode: podmanMode{}},
		{name: "rootless, published", mode: podmanMode{keepID: true}, userns: "keep-id:uid=1000,gid=1000"},
		{name: "rootless, host network", mode: podmanMode{keepID: true, hostNetwork: true}, userns: "keep-id:uid=1000,gid=1000", hostNetwork: true},
		{name: "all GPUs by CDI", mode: podmanMode{cdiGPUs: true}, gpus: "all", devices: []string{"nvidia.com/gpu=all"}},
		{name: "two GPUs by CDI", mode: podmanMode{cdiGPUs: true}, gpus: "2", devices: []string{"nvidia.com/gpu=0", "nvidia.com/gpu=1"}},
		{name: "GPUs without CDI", mode: podmanMode{}, gpus: "all", err: "nvidia-ctk cdi generate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := spec
			s.GPUs = tt.gpus
			opts, err := containerConfig(s, "/state/mnist")
			if err != nil {
				t.Fatal(err)
			}
			err = tt.mode.adapt(&opts, s)
			if tt.err != "" {
				var gpu *NoGPURuntimeError
				if !errors.As(err, &gpu) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want a NoGPURuntimeError saying %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			h := opts.HostConfig
			if string(h.UsernsMode) != tt.userns {
				t.Errorf("userns %q, want %q", h.UsernsMode, tt.userns)
			}
			if got := h.NetworkMode == network.NetworkHost; got != tt.hostNetwork {
				t.Errorf("host network %v, want %v", got, tt.hostNetwork)
			}
			if tt.hostNetwork {
				if len(h.PortBindings) != 0 || len(opts.Config.ExposedPorts) != 0 {
					t.Errorf("a host-network container publishes %v", h.PortBindings)
				}
				if got := labelledPorts(opts.Config.Labels); len(got) != 2 || got[0] != s.Ports[0] || got[1] != s.Ports[1] {
					t.Errorf("ports label %q gives %+v, want %+v", opts.Config.Labels[contract.LabelPorts], got, s.Ports)
				}
			} else if len(h.PortBindings) != 2 || opts.Config.Labels[contract.LabelPorts] != "" {
				t.Errorf("bindings %v, ports label %q", h.PortBindings, opts.Config.Labels[contract.LabelPorts])
			}
			var devices []string
			for _, d := range h.Devices {
				devices = append(devices, d.PathOnHost)
			}
			if strings.Join(devices, " ") != strings.Join(tt.devices, " ") || (tt.gpus != "" && len(h.DeviceRequests) != 0) {
				t.Errorf("devices %v (requests %v), want %v", devices, h.DeviceRequests, tt.devices)
			}
			// The project stays a bind mount: keep-id makes it the dev user's.
			if !strings.HasPrefix(h.Binds[0], "/home/me/mnist:") {
				t.Errorf("binds %v", h.Binds)
			}
		})
	}
}
