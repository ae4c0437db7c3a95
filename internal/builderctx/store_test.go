package builderctx

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func names(cs []Context) string {
	var n []string
	for _, c := range cs {
		n = append(n, c.Name)
	}
	return strings.Join(n, ",")
}

func TestStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "envd") // not created yet
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	check := func(wantNames, wantCurrent string) {
		t.Helper()
		cs, cur, err := s.List()
		if err != nil {
			t.Fatal(err)
		}
		if names(cs) != wantNames || cur != wantCurrent {
			t.Fatalf("List = %s (current %s), want %s (current %s)", names(cs), cur, wantNames, wantCurrent)
		}
		c, err := s.Current()
		if err != nil || c.Name != wantCurrent {
			t.Fatalf("Current = %+v, %v; want %s", c, err, wantCurrent)
		}
	}
	check("default", "default")
	if c, _ := s.Current(); !c.IsManaged() {
		t.Errorf("default must be the managed builder: %+v", c)
	}

	steps := []struct {
		name    string
		do      func() error
		wantErr error
		names   string
		current string
	}{
		{"create ci", func() error { return s.Create(Context{Name: "ci", Builder: "tcp://10.0.0.5:1234"}) }, nil, "default,ci", "default"},
		{"create sock", func() error { return s.Create(Context{Name: "sock", Builder: "unix:///run/bk.sock"}) }, nil, "default,ci,sock", "default"},
		{"duplicate", func() error { return s.Create(Context{Name: "ci", Builder: "tcp://other:1"}) }, ErrExists, "default,ci,sock", "default"},
		{"invalid", func() error { return s.Create(Context{Name: "Bad", Builder: "tcp://h:1"}) }, ErrInvalid, "default,ci,sock", "default"},
		{"use ci", func() error { return s.Use("ci") }, nil, "default,ci,sock", "ci"},
		{"use missing", func() error { return s.Use("nope") }, ErrNotFound, "default,ci,sock", "ci"},
		{"remove default", func() error { return s.Remove("default") }, ErrBuiltin, "default,ci,sock", "ci"},
		{"remove missing", func() error { return s.Remove("nope") }, ErrNotFound, "default,ci,sock", "ci"},
		{"remove other keeps current", func() error { return s.Remove("sock") }, nil, "default,ci", "ci"},
		{"remove current falls back", func() error { return s.Remove("ci") }, nil, "default", "default"},
		{"use default", func() error { return s.Use("default") }, nil, "default", "default"},
	}
	for _, st := range steps {
		err := st.do()
		if st.wantErr == nil && err != nil || st.wantErr != nil && !errors.Is(err, st.wantErr) {
			t.Fatalf("%s: err = %v, want %v", st.name, err, st.wantErr)
		}
		check(st.names, st.current)
	}

	// Another Store on the same dir sees the same state (the file is the truth).
	s.Create(Context{Name: "ci", Builder: "tcp://10.0.0.5:1234"})
	s.Use("ci")
	s2, _ := Open(dir)
	if c, err := s2.Current(); err != nil || c.Builder != "tcp://10.0.0.5:1234" {
		t.Fatalf("second store: %+v, %v", c, err)
	}
	// No temp files left beside it.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "contexts.json" {
		t.Errorf("dir holds %v", entries)
	}
}

func TestStoreFile(t *testing.T) {
	tests := []struct {
		name     string
		content  string
		wantErr  error
		current  string
		contexts string
	}{
		{"corrupt", "{not json", ErrInvalid, "", ""},
		{"current points nowhere", `{"current":"gone","contexts":[{"name":"ci","builder":"tcp://h:1"}]}`, nil, "default", "default,ci"},
		{"empty object", `{}`, nil, "default", "default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "contexts.json"), []byte(tt.content), 0o644)
			s, err := Open(dir)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), "remove it") {
					t.Fatalf("err = %v, want %v with a hint", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			cs, cur, err := s.List()
			if err != nil || cur != tt.current || names(cs) != tt.contexts {
				t.Fatalf("List = %s (current %s), %v", names(cs), cur, err)
			}
		})
	}
}

func TestStoreFormat(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "ca.pem"), []byte("x"), 0o600)
	s, _ := Open(dir)
	if err := s.Create(Context{Name: "ci", Builder: "tcp://h:1", TLS: &TLS{CACert: filepath.Join(dir, "ca.pem"), ServerName: "bk"}}); err != nil {
		t.Fatal(err)
	}
	s.Use("ci")
	b, _ := os.ReadFile(filepath.Join(dir, "contexts.json"))
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := `{"contexts":[{"builder":"tcp://h:1","name":"ci","tls":{"ca_cert":"` + filepath.Join(dir, "ca.pem") + `","server_name":"bk"}}],"current":"ci"}`
	if g, _ := json.Marshal(got); string(g) != want {
		t.Errorf("contexts.json =\n%s\nwant %s", g, want)
	}
}

func TestOpenDefaultDir(t *testing.T) {
	cfg := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", cfg)
	s, err := Open("")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Create(Context{Name: "ci", Builder: "tcp://h:1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(cfg, "envd", "contexts.json")); err != nil {
		t.Fatal(err)
	}
}
