package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"envd.dev/envd/internal/agent"
	"envd.dev/envd/internal/ir"
)

// The Jupyter token is in no process's argv (every host user can read
// those): it reaches Jupyter through its own environment.
func TestJupyterTokenNotOnCommandLine(t *testing.T) {
	for _, tt := range []struct {
		name, fixed string
	}{{"generated token", ""}, {"fixed token", "my-fixed-token"}} {
		t.Run(tt.name, func(t *testing.T) {
			p := &buildPlan{project: "proj", env: &ir.Environment{Jupyter: &ir.Jupyter{Token: tt.fixed}}}
			cfg, token, err := agentConfig(p, "proj")
			if err != nil {
				t.Fatal(err)
			}
			if tt.fixed != "" && token != tt.fixed || len(token) < 32 && tt.fixed == "" {
				t.Fatalf("token = %q", token)
			}
			var jupyter *agent.Service
			for i, svc := range cfg.Services {
				if strings.Contains(strings.Join(svc.Command, " "), token) {
					t.Errorf("service %s has the token on its command line: %q", svc.Name, svc.Command)
				}
				if svc.Name == "jupyter" {
					jupyter = &cfg.Services[i]
				}
			}
			if jupyter == nil || jupyter.Env["JUPYTER_TOKEN"] != token {
				t.Fatalf("jupyter service %+v does not get the token in JUPYTER_TOKEN", jupyter)
			}
			for k, v := range cfg.Env {
				if strings.Contains(v, token) {
					t.Errorf("the token is in every session's environment (%s)", k)
				}
			}
		})
	}
}

// The environment's state (host key, authorized keys, agent.json with the
// token) is its owner's only, also in a directory an older envd made 0755.
func TestEnvStateIsPrivate(t *testing.T) {
	isolate(t)
	dir := filepath.Join(t.TempDir(), "envs", "proj")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := &buildPlan{project: "proj", env: &ir.Environment{Jupyter: &ir.Jupyter{Token: "my-fixed-token"}}}
	if _, _, err := writeEnvState(dir, "ssh-ed25519 AAAA test", p, "proj"); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"", hostKeyFile, authKeysFile, agentConfFile} {
		want := os.FileMode(0o600)
		if f == "" {
			want = 0o700 // the directory
		}
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s/%s has mode %v, want %v", dir, f, fi.Mode().Perm(), want)
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, agentConfFile))
	if err != nil {
		t.Fatal(err)
	}
	var cfg agent.Config
	if err := json.Unmarshal(data, &cfg); err != nil || len(cfg.Services) != 1 || cfg.Services[0].Env["JUPYTER_TOKEN"] != "my-fixed-token" {
		t.Errorf("agent.json does not carry the token to the agent: %v\n%s", err, data)
	}
}
