package buildkitd

import (
	"bytes"
	"errors"
	"path/filepath"
	"slices"
	"testing"

	bkconfig "github.com/moby/buildkit/cmd/buildkitd/config"
)

func TestParseMirror(t *testing.T) {
	tests := []struct {
		in      string
		want    *mirror
		wantErr string
	}{
		{"", nil, ""},
		{"127.0.0.1:5000", &mirror{"127.0.0.1:5000", true, true}, ""},
		{"http://127.0.0.1:5000", &mirror{"127.0.0.1:5000", true, true}, ""},
		{"http://127.0.0.1:5000/", &mirror{"127.0.0.1:5000", true, true}, ""},
		{"localhost:5000", &mirror{"localhost:5000", true, true}, ""},
		{"[::1]:5000", &mirror{"[::1]:5000", true, true}, ""},
		{"mirror.corp:5000", &mirror{"mirror.corp:5000", true, false}, ""},
		{"https://mirror.example.com", &mirror{"mirror.example.com", false, false}, ""},
		{"https://127.0.0.1:5443", &mirror{"127.0.0.1:5443", false, true}, ""},
		{"ftp://127.0.0.1:5000", nil, "scheme must be http or https"},
		{"http://", nil, "no host"},
		{"http://:5000", nil, "no host"},
		{"http://u:p@127.0.0.1:5000", nil, "only a host and port"},
		{"http://127.0.0.1:5000/v2/library", nil, "only a host and port"},
		{"127.0.0.1:5000?x=1", nil, "only a host and port"},
		{"127.0.0.1:", nil, "empty port"},
		{"http://%zz", nil, "not a URL"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseMirror(tt.in)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrBadMirror) || !contains(err.Error(), tt.wantErr) || !contains(err.Error(), "hint:") {
					t.Fatalf("err = %v, want ErrBadMirror containing %q and a hint", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (got == nil) != (tt.want == nil) || got != nil && *got != *tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestRenderConfig(t *testing.T) {
	tests := []struct {
		mirror       string
		wantRegistry map[string]string // registry -> "mirrors|http|insecure"
	}{
		{"", nil},
		{"127.0.0.1:5000", map[string]string{"docker.io": "127.0.0.1:5000||", "127.0.0.1:5000": "|http|insecure"}},
		{"http://mirror.corp:5000", map[string]string{"docker.io": "mirror.corp:5000||", "mirror.corp:5000": "|http|"}},
		{"https://mirror.example.com", map[string]string{"docker.io": "mirror.example.com||"}},
	}
	for _, tt := range tests {
		t.Run(tt.mirror, func(t *testing.T) {
			o := Options{Dir: "/var/lib/envd bk", Mirror: tt.mirror}
			b, err := renderConfig(o)
			if err != nil {
				t.Fatal(err)
			}
			again, _ := renderConfig(o)
			if !bytes.Equal(b, again) {
				t.Fatal("renderConfig is not deterministic")
			}
			// Parse with buildkitd's own loader: the schema is the real one.
			cfg, err := bkconfig.Load(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("%v\n%s", err, b)
			}
			if cfg.Root != filepath.Join(o.Dir, "root") {
				t.Errorf("root = %q", cfg.Root)
			}
			w := cfg.Workers
			if w.OCI.Enabled == nil || !*w.OCI.Enabled || w.Containerd.Enabled == nil || *w.Containerd.Enabled {
				t.Errorf("want oci on and containerd off:\n%s", b)
			}
			if w.OCI.GC == nil || !*w.OCI.GC || len(w.OCI.GCPolicy) != 4 {
				t.Fatalf("want gc on with 4 policies:\n%s", b)
			}
			for _, p := range w.OCI.GCPolicy {
				if slices.Contains(p.Filters, "type==exec.cachemount") {
					t.Errorf("cache mounts must not get the short-lived policy: %v", p.Filters)
				}
			}
			if last := w.OCI.GCPolicy[3]; !last.All || last.MaxUsedSpace.Bytes != 40<<30 || last.ReservedSpace.Bytes != 10<<30 {
				t.Errorf("last policy = %+v", last)
			}
			got := map[string]string{}
			for host, r := range cfg.Registries {
				s := ""
				if len(r.Mirrors) > 0 {
					s = r.Mirrors[0]
				}
				s += "|"
				if r.PlainHTTP != nil && *r.PlainHTTP {
					s += "http"
				}
				s += "|"
				if r.Insecure != nil && *r.Insecure {
					s += "insecure"
				}
				got[host] = s
			}
			if len(got) != len(tt.wantRegistry) {
				t.Fatalf("registries = %v, want %v", got, tt.wantRegistry)
			}
			for k, v := range tt.wantRegistry {
				if got[k] != v {
					t.Errorf("registry %q = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

func TestRenderConfigBadMirror(t *testing.T) {
	if _, err := renderConfig(Options{Dir: "/x", Mirror: "ftp://h"}); !errors.Is(err, ErrBadMirror) {
		t.Fatalf("err = %v, want ErrBadMirror", err)
	}
}

func TestWhatChanged(t *testing.T) {
	render := func(dir, mirror string) []byte {
		b, err := renderConfig(Options{Dir: dir, Mirror: mirror})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		have, want []byte
		says       string
	}{
		{render("/a", ""), render("/a", "127.0.0.1:5000"), "registry mirror changed from none to 127.0.0.1:5000"},
		{render("/a", "127.0.0.1:5000"), render("/a", "https://m.corp"), "registry mirror changed from 127.0.0.1:5000 to m.corp"},
		{render("/a", "127.0.0.1:5000"), render("/a", ""), "registry mirror changed from 127.0.0.1:5000 to none"},
		{render("/a", ""), render("/b", ""), "its configuration changed"},
		{nil, render("/b", ""), "its configuration changed"},
	}
	for _, tt := range tests {
		if got := whatChanged(tt.have, tt.want); got != tt.says {
			t.Errorf("got %q, want %q", got, tt.says)
		}
	}
}

func contains(s, sub string) bool { return bytes.Contains([]byte(s), []byte(sub)) }
