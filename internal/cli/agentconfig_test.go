package cli

import (
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
			cfg, token, err := agentConfig(p, "proj", &agent.User{Name: "envd", UID: 1234, GID: 1234, Home: "/home/envd"})
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
