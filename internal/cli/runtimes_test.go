package cli

import "testing"

func TestPushExport(t *testing.T) {
	for _, tt := range []struct {
		registry, name string
		insecure       bool
	}{
		{"127.0.0.1:5000/envd", "127.0.0.1:5000/envd/proj:dev", true},
		{"localhost:5000", "localhost:5000/proj:dev", true},
		{"[::1]:5000/x", "[::1]:5000/x/proj:dev", true},
		{"registry.example.com/ml", "registry.example.com/ml/proj:dev", false},
		{"10.0.0.5:5000", "10.0.0.5:5000/proj:dev", false},
	} {
		e := pushExport(tt.registry, "proj:dev")
		if e.Name != tt.name || !e.Push || (e.Attrs["registry.insecure"] == "true") != tt.insecure {
			t.Errorf("pushExport(%q) = %+v; want %s, insecure %v", tt.registry, e, tt.name, tt.insecure)
		}
	}
}
