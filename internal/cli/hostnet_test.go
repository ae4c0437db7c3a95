package cli

import (
	"context"
	"strings"
	"testing"

	"envd.dev/envd/internal/runtime"
)

// oneEnv is a runtime with at most one environment; only Get is used.
type oneEnv struct {
	runtime.Runtime
	env *runtime.Env
}

func (o oneEnv) Get(_ context.Context, name string) (*runtime.Env, error) {
	if o.env == nil || o.env.Name != name {
		return nil, runtime.ErrNotFound
	}
	return o.env, nil
}

func TestHostNetworkPorts(t *testing.T) {
	ports := []runtime.Port{
		{Name: "ssh", ContainerPort: 2222},
		{Name: "web", ContainerPort: 8000},
		{Name: "jupyter", ContainerPort: 8888, HostPort: 9999},
	}
	existing := &runtime.Env{Name: "mnist", Ports: []runtime.Port{{ContainerPort: 2222, HostPort: 41234}, {ContainerPort: 8000, HostPort: 8000}}}
	tests := []struct {
		name  string
		rt    oneEnv
		ports []runtime.Port
		check func(t *testing.T, got []runtime.Port)
		err   string
	}{
		{name: "new: a free port for ssh, its own for a service, the one asked for Jupyter", ports: ports, check: func(t *testing.T, got []runtime.Port) {
			if got[0].HostPort == 0 || got[0].HostPort == 2222 || got[1].HostPort != 8000 || got[2].HostPort != 9999 {
				t.Errorf("ports %+v", got)
			}
		}},
		{name: "existing: the same ports again", rt: oneEnv{env: existing}, ports: ports, check: func(t *testing.T, got []runtime.Port) {
			if got[0].HostPort != 41234 || got[1].HostPort != 8000 {
				t.Errorf("ports %+v, want ssh on 41234 as before", got)
			}
		}},
		{name: "a service moved to another host port cannot be", ports: []runtime.Port{{Name: "web", ContainerPort: 8000, HostPort: 8080}}, err: "drop host_port, or make it 8000"},
		{name: "a service on its own host port is fine", ports: []runtime.Port{{Name: "web", ContainerPort: 8000, HostPort: 8000}}, check: func(t *testing.T, got []runtime.Port) {
			if got[0].HostPort != 8000 {
				t.Errorf("ports %+v", got)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := hostNetworkPorts(context.Background(), tt.rt, "mnist", tt.ports)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, got)
		})
	}
}
