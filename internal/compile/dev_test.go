package compile

import (
	"strings"
	"testing"

	"github.com/moby/buildkit/solver/pb"

	"envd.dev/envd/internal/ir"
)

func devEnv() *ir.Environment {
	env := pythonEnv()
	env.Base.Dev = true
	env.Shell = "zsh"
	env.GitConfig = &ir.GitConfig{Name: "Ada Lovelace", Email: "ada@example.com"}
	env.Jupyter = &ir.Jupyter{Port: 8888}
	return env
}

func TestDevImageHasAgentUserAndShell(t *testing.T) {
	g, res := compileGraph(t, devEnv(), Options{})

	// The agent comes from its own local source and is merged in as a layer.
	var agentCopy bool
	for _, op := range g.list {
		if f := op.GetFile(); f != nil {
			for _, a := range f.Actions {
				if cp := a.GetCopy(); cp != nil && cp.Dest == AgentPath {
					agentCopy = true
				}
			}
		}
	}
	if !agentCopy {
		t.Error("no copy of the agent to " + AgentPath)
	}
	var merge *pb.MergeOp
	for _, op := range g.list {
		if m := op.GetMerge(); m != nil {
			merge = m
		}
	}
	if merge == nil || len(merge.Inputs) != 4 {
		t.Fatalf("want runtime + system + python + agent merged, got %+v", merge)
	}

	apt := strings.Join(g.exec(t, " sudo").Meta.Args, " ")
	for _, p := range []string{" zsh", " git", " curl", " procps"} {
		if !strings.Contains(apt, p) {
			t.Errorf("dev packages lack %s: %s", p, apt)
		}
	}
	user := strings.Join(g.exec(t, "useradd").Meta.Args, " ")
	for _, want := range []string{"-u 1000", "-s /usr/bin/zsh", "NOPASSWD", "ENVD_NAME", "/etc/profile.d/00-envd-path.sh"} {
		if !strings.Contains(user, want) {
			t.Errorf("user step lacks %q", want)
		}
	}
	var gitconfig string
	for _, op := range g.list {
		if f := op.GetFile(); f != nil {
			for _, a := range f.Actions {
				if mk := a.GetMkfile(); mk != nil && mk.Path == "/etc/gitconfig" {
					gitconfig = string(mk.Data)
				}
			}
		}
	}
	if gitconfig != "[user]\n\tname = \"Ada Lovelace\"\n\temail = \"ada@example.com\"\n" {
		t.Errorf("/etc/gitconfig = %q", gitconfig)
	}
	if !strings.Contains(strings.Join(g.exec(t, "pip install").Meta.Args, " "), "jupyterlab") {
		t.Error("config.jupyter did not install jupyterlab")
	}

	cfg := res.Config.Config
	if strings.Join(cfg.Entrypoint, " ") != AgentPath+" run" || len(cfg.Cmd) != 0 {
		t.Errorf("entrypoint %v cmd %v", cfg.Entrypoint, cfg.Cmd)
	}
	if cfg.Labels[LabelDev] != "true" {
		t.Error("dev label missing")
	}
}

func TestVSCodeExtensionsInstallWithTheAgent(t *testing.T) {
	env := devEnv()
	env.VSCodeExtensions = []ir.Package{{Name: "ms-python.python"}, {Name: "acme.rocket@1.2.3"}, {Name: "tools/mine.vsix"}}
	g, _ := compileGraph(t, env, Options{VSCodeMarketplace: "http://127.0.0.1:9/vsx"})
	e := g.exec(t, "vscode-extensions")
	args := strings.Join(e.Meta.Args, " ")
	for _, want := range []string{AgentPath + " vscode-extensions --marketplace http://127.0.0.1:9/vsx --dir /home/envd/.vscode-server/extensions ms-python.python acme.rocket@1.2.3 /tmp/envd/vsix/tools/mine.vsix", "ln -sfn /home/envd/.vscode-server /root/.vscode-server"} {
		if !strings.Contains(args, want) {
			t.Errorf("extension step %q lacks %q", args, want)
		}
	}
	var mounted bool
	for _, m := range e.Mounts {
		mounted = mounted || (m.Dest == vsixDir && m.Readonly)
	}
	if !mounted {
		t.Error("extension files from the build directory are not mounted")
	}
	if !dependsOn(g, e, g.exec(t, "useradd")) {
		t.Error("extensions install before the user exists")
	}
}

func TestNonDevImageHasNoAgent(t *testing.T) {
	g, res := compileGraph(t, pythonEnv(), Options{})
	for _, op := range g.list {
		if s := op.GetSource(); s != nil && s.Identifier == "local://"+LocalAgent {
			t.Error("a non-dev image includes the agent")
		}
		if e := op.GetExec(); e != nil && strings.Contains(strings.Join(e.Meta.Args, " "), "useradd") {
			t.Error("a non-dev image creates a user")
		}
	}
	if len(res.Config.Config.Entrypoint) != 0 {
		t.Errorf("entrypoint %v", res.Config.Config.Entrypoint)
	}
}
