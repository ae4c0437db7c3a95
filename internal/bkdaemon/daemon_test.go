//go:build linux

package bkdaemon

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	envdLike := write("envd.toml", "root = \"/var/lib/x\"\n[grpc]\n  uid = 4324\n  gid = 4325\n[worker.oci]\n  enabled = true\n  gc = true\n[worker.containerd]\n  enabled = false\n")
	tests := []struct {
		name    string
		args    []string
		check   func(t *testing.T, s settings)
		errHas  string
		wantErr bool
	}{
		{name: "envd's own config", args: []string{"--config", envdLike, "--addr", "unix:///run/x.sock"}},
		{name: "root flag wins", args: []string{"--config", envdLike, "--root", "rel/dir"}},
		{name: "missing config named", args: []string{"--config", filepath.Join(dir, "nope.toml")}, errHas: "nope.toml"},
		{name: "bad toml", args: []string{"--config", write("bad.toml", "root = [")}, errHas: "bad.toml"},
		{name: "tcp refused", args: []string{"--config", envdLike, "--addr", "tcp://127.0.0.1:1234"}, errHas: "unix://PATH only"},
		{name: "empty unix path", args: []string{"--config", envdLike, "--addr", "unix://"}, errHas: "unix://PATH only"},
		{name: "containerd worker refused", args: []string{"--config", write("ctd.toml", "[worker.containerd]\n  enabled = true\n")}, errHas: "OCI (runc) worker only"},
		{name: "oci disabled refused", args: []string{"--config", write("nooci.toml", "[worker.oci]\n  enabled = false\n")}, errHas: "only worker"},
		{name: "compaction refused", args: []string{"--config", write("compact.toml", "[compaction]\n  enabled = true\n")}, errHas: "[compaction]: envd as buildkitd does not have it"},
		{name: "dockerfile frontend refused", args: []string{"--config", write("df.toml", "[frontend.\"dockerfile.v0\"]\n  enabled = true\n")}, errHas: "dockerfile.v0"},
		{name: "tls refused", args: []string{"--config", write("tls.toml", "[grpc.tls]\n  cert = \"/c.pem\"\n")}, errHas: "no TLS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			s, err := parseFlags(tt.args, &stderr)
			if err != nil {
				t.Fatalf("parseFlags: %v", err)
			}
			cfg, err := loadConfig(s)
			if tt.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("err = %v, want one containing %q", err, tt.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !filepath.IsAbs(cfg.Root) {
				t.Errorf("root %q is not absolute", cfg.Root)
			}
			if s.root == "" && cfg.Root != "/var/lib/x" {
				t.Errorf("root = %q, want the config's", cfg.Root)
			}
			if s.root != "" && !strings.HasSuffix(cfg.Root, "/rel/dir") {
				t.Errorf("root = %q, want the flag's", cfg.Root)
			}
			if *cfg.GRPC.UID != 4324 || *cfg.GRPC.GID != 4325 {
				t.Errorf("socket owner %d:%d, want the config's 4324:4325", *cfg.GRPC.UID, *cfg.GRPC.GID)
			}
			if len(s.addrs) > 0 && cfg.GRPC.Address[0] != s.addrs[0] {
				t.Errorf("address %v, want %v", cfg.GRPC.Address, s.addrs)
			}
			if o := cfg.Workers.OCI; o.Snapshotter != "auto" || o.Binary != "runc" || o.Mode != "auto" {
				t.Errorf("OCI defaults: snapshotter %q binary %q network %q", o.Snapshotter, o.Binary, o.Mode)
			}
		})
	}
}

func TestFlagsRefuseWhatIsNotHere(t *testing.T) {
	for _, args := range [][]string{{"--oci-worker-snapshotter", "stargz"}, {"prune"}} {
		var stderr bytes.Buffer
		if _, err := parseFlags(args, &stderr); err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
	var stderr bytes.Buffer
	if code := Main([]string{"--config", "/nonexistent/buildkitd.toml"}, &stderr, Info{}); code != 1 || !strings.Contains(stderr.String(), "/nonexistent/buildkitd.toml") {
		t.Errorf("missing config: exit %d, %q", code, stderr.String())
	}
}

func TestSnapshotter(t *testing.T) {
	root := t.TempDir()
	f, err := snapshotter(root, "auto")
	if err != nil || (f.Name != "overlayfs" && f.Name != "native") {
		t.Errorf("auto: %q, %v", f.Name, err)
	}
	if _, err := snapshotter(root, "stargz"); err == nil || !strings.Contains(err.Error(), "overlayfs and native") {
		t.Errorf("stargz: %v", err)
	}
}
