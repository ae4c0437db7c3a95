package builder

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseOutput(t *testing.T) {
	tests := []struct {
		spec    string
		want    Export
		wantErr string
	}{
		{spec: "", want: Export{Type: "docker", Name: "proj:dev", Attrs: map[string]string{}}},
		{spec: "type=docker,name=x:1", want: Export{Type: "docker", Name: "x:1", Attrs: map[string]string{}}},
		{spec: "type=oci,dest=env.tar", want: Export{Type: "oci", Name: "proj:dev", Dest: "env.tar", Attrs: map[string]string{}}},
		{spec: "type=image,name=127.0.0.1:5000/x:1,push=true,registry.insecure=true",
			want: Export{Type: "image", Name: "127.0.0.1:5000/x:1", Push: true, Attrs: map[string]string{"registry.insecure": "true"}}},
		{spec: "type=docker,dest=env.tar", want: Export{Type: "docker", Name: "proj:dev", Dest: "env.tar", Attrs: map[string]string{}}},
		{spec: "type=oci", wantErr: "needs dest=FILE"},
		{spec: "type=tar,dest=x", wantErr: `unknown type "tar"`},
		{spec: "type=docker,push=true", wantErr: "push=true needs type=image"},
		{spec: "type=image,push=yes", wantErr: "push must be true or false"},
		{spec: "oci", wantErr: "is not key=value"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			got, err := ParseOutput(tt.spec, "proj:dev")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
