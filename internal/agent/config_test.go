package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The example from the design brief, as envd writes it.
const exampleConfig = `{
  "ssh": {"listen": "0.0.0.0:2222", "host_key": "/run/envd/ssh_host_ed25519_key", "authorized_keys": "/run/envd/authorized_keys", "shell": "/bin/bash"},
  "workdir": "/home/envd/myproject",
  "log_dir": "/home/envd/.local/state/envd/logs",
  "env": {"KEY": "VALUE"},
  "init":    [{"name": "init-1", "command": ["sh", "-c", "echo hi"]}],
  "services": [{"name": "streamlit", "command": ["streamlit", "run", "app.py"], "restart": "always"},
               {"name": "jupyter", "command": ["jupyter", "lab", "--ip=0.0.0.0", "--port=8888"], "env": {"JUPYTER_TOKEN": "..."}}],
  "field_from_a_newer_envd": true
}`

func TestLoadConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.json")
	if err := os.WriteFile(path, []byte(exampleConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SSH.Shell != "/bin/bash" || cfg.Workdir != "/home/envd/myproject" || cfg.Env["KEY"] != "VALUE" {
		t.Errorf("config = %+v", cfg)
	}
	if len(cfg.Services) != 2 || cfg.Services[1].Restart != RestartAlways || cfg.Services[1].Env["JUPYTER_TOKEN"] != "..." {
		t.Errorf("services = %+v, want jupyter to default to restart always", cfg.Services)
	}
	if got := cfg.StatusPath(); got != "/home/envd/.local/state/envd/logs/status.json" {
		t.Errorf("StatusPath = %s", got)
	}
	if got := cfg.LogPath("jupyter"); got != "/home/envd/.local/state/envd/logs/jupyter.log" {
		t.Errorf("LogPath = %s", got)
	}
}

func TestLoadConfigDefaults(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_STATE_HOME", "")
	path := filepath.Join(home, "agent.json")
	if err := os.WriteFile(path, []byte(`{"ssh": {"host_key": "/k", "authorized_keys": "/a"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SSH.Listen != DefaultListen {
		t.Errorf("listen = %q", cfg.SSH.Listen)
	}
	if cfg.SSH.Shell != "/bin/bash" && cfg.SSH.Shell != "/bin/sh" {
		t.Errorf("shell = %q", cfg.SSH.Shell)
	}
	if cfg.Workdir != home || cfg.LogDir != filepath.Join(home, ".local/state/envd/logs") {
		t.Errorf("workdir %q, log_dir %q", cfg.Workdir, cfg.LogDir)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	dir := t.TempDir()
	valid := `"ssh": {"host_key": "/k", "authorized_keys": "/a"}`
	tests := []struct {
		name              string
		json              string
		expectErrContains []string
	}{
		{"not json", `{`, []string{"agent.json: unexpected end of JSON input"}},
		{"no keys", `{}`, []string{"ssh.host_key is required", "ssh.authorized_keys is required"}},
		{"relative paths", `{` + valid + `, "workdir": "proj", "log_dir": "logs"}`,
			[]string{`workdir "proj" must be an absolute path`, `log_dir "logs" must be an absolute path`}},
		{"relative shell", `{"ssh": {"host_key": "/k", "authorized_keys": "/a", "shell": "bash"}}`,
			[]string{`ssh.shell "bash" must be an absolute path`}},
		{"bad env name", `{` + valid + `, "env": {"A=B": "x"}}`, []string{`env: invalid variable name "A=B"`}},
		{"bad service env name", `{` + valid + `, "services": [{"name": "s", "command": ["true"], "env": {"": "x"}}]}`,
			[]string{`services[0] (s): env: invalid variable name ""`}},
		{"empty command", `{` + valid + `, "init": [{"name": "i", "command": []}]}`,
			[]string{"init[0] (i): command is empty"}},
		{"name used twice", `{` + valid + `, "init": [{"name": "x", "command": ["true"]}], "services": [{"name": "x", "command": ["true"]}]}`,
			[]string{`services[0]: name "x" is already used by init`}},
		{"unsafe name", `{` + valid + `, "services": [{"name": "../x", "command": ["true"]}]}`,
			[]string{`services[0]: name "../x" must be letters`}},
		{"bad user", `{` + valid + `, "user": {"name": "Bad User", "uid": -1, "gid": 1, "home": "home"}}`,
			[]string{`user.name "Bad User" is not a valid account name`, "uid and gid must not be negative", `user.home "home" must be an absolute path`}},
		{"bad restart", `{` + valid + `, "services": [{"name": "s", "command": ["true"], "restart": "sometimes"}]}`,
			[]string{`services[0] (s): restart "sometimes" must be "always", "on-failure" or "never"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "agent.json")
			if err := os.WriteFile(path, []byte(tt.json), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadConfig(path)
			if err == nil {
				t.Fatal("LoadConfig succeeded")
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
			for _, want := range tt.expectErrContains {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}

	if _, err := LoadConfig(filepath.Join(dir, "missing.json")); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("missing file: %v", err)
	}
}
