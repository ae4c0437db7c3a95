package envs

import (
	"reflect"
	"testing"

	"envd.dev/envd/internal/forward"
	"envd.dev/envd/internal/runtime"
)

func TestForwards(t *testing.T) {
	spec := runtime.Spec{Ports: []runtime.Port{
		{Name: "ssh", ContainerPort: 2222},
		{Name: "web", ContainerPort: 8000, HostPort: 8080},
		{Name: "jupyter", ContainerPort: 8888},
	}}
	for _, tt := range []struct {
		name string
		env  runtime.Env
		want []forward.Forward
	}{
		{"nothing published (a cluster)", runtime.Env{Ports: []runtime.Port{{ContainerPort: 8000}, {ContainerPort: 8888}}}, []forward.Forward{
			{Name: "web", RemotePort: 8000, LocalAddr: "127.0.0.1:8080"},
			{Name: "jupyter", RemotePort: 8888, LocalAddr: "127.0.0.1:0"},
		}},
		{"all published (Docker)", runtime.Env{Ports: []runtime.Port{{ContainerPort: 2222, HostPort: 4000}, {ContainerPort: 8000, HostPort: 8080}, {ContainerPort: 8888, HostPort: 4001}}}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := Forwards(spec, &tt.env); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Forwards = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParsePortFlag(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    forward.Forward
		wantErr bool
	}{
		{in: "web=8000:127.0.0.1:8080", want: forward.Forward{Name: "web", RemotePort: 8000, LocalAddr: "127.0.0.1:8080"}},
		{in: "jupyter=8888:127.0.0.1:0", want: forward.Forward{Name: "jupyter", RemotePort: 8888, LocalAddr: "127.0.0.1:0"}},
		{in: "web=8000", wantErr: true},
		{in: "8000:127.0.0.1:1", wantErr: true},
		{in: "web=x:127.0.0.1:1", wantErr: true},
	} {
		got, err := ParsePortFlag(tt.in)
		if (err != nil) != tt.wantErr || (!tt.wantErr && got != tt.want) {
			t.Errorf("ParsePortFlag(%q) = %+v, %v", tt.in, got, err)
		}
	}
	// What StartForwarder writes, ParsePortFlag reads back.
	f := forward.Forward{Name: "web", RemotePort: 8000, LocalAddr: "127.0.0.1:8080"}
	if got, err := ParsePortFlag(portFlag(f)); err != nil || got != f {
		t.Errorf("round trip: %+v, %v", got, err)
	}
}
