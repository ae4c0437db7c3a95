package cli

import (
	"strings"
	"testing"

	"envd.dev/envd/internal/agent"
	"envd.dev/envd/internal/ir"
	"envd.dev/envd/internal/runtime"
)

// The Jupyter token is in no process's argv (every host user can read
// those): it reaches Jupyter through its own environment.
func TestJupyterTokenNotOnCommandLine(t *testing.T) {
	for _, tt := range []struct {
		name, fixed string
	}{{"generated token", ""}, {"fixed token", "my-fixed-token"}} {
		t.Run(tt.name, func(t *testing.T) {
			p := &buildPlan{project: "proj", env: &ir.Environment{Jupyter: &ir.Jupyter{Token: tt.fixed}}}
			cfg, token, err := agentConfig(p, "proj", &agent.User{Name: "envd", UID: 1234, GID: 1234, Home: "/home/envd"}, inContainer)
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

// On a host network the agent's sshd and Jupyter listen on the host ports
// envd chose, on loopback unless asked otherwise; elsewhere on their own
// ports on every address of the environment's network.
func TestAgentListens(t *testing.T) {
	ports := []runtime.Port{{Name: "ssh", ContainerPort: 2222, HostPort: 40001}, {Name: "jupyter", ContainerPort: 8888, HostIP: "0.0.0.0", HostPort: 40002}}
	for _, tt := range []struct {
		name         string
		listen       listenFunc
		ssh, jupyter string
	}{
		{"own network", inContainer, "0.0.0.0:2222", "--ip=0.0.0.0 --port=8888"},
		{"host network", onHost(ports), "127.0.0.1:40001", "--ip=0.0.0.0 --port=40002"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := &buildPlan{project: "proj", env: &ir.Environment{Jupyter: &ir.Jupyter{}}}
			cfg, _, err := agentConfig(p, "proj", &agent.User{Name: "envd", UID: 1000, GID: 1000, Home: "/home/envd"}, tt.listen)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.SSH.Listen != tt.ssh {
				t.Errorf("sshd listens on %s, want %s", cfg.SSH.Listen, tt.ssh)
			}
			if cmd := strings.Join(cfg.Services[0].Command, " "); !strings.Contains(cmd, tt.jupyter) {
				t.Errorf("jupyter %q, want %q in it", cmd, tt.jupyter)
			}
		})
	}
}
