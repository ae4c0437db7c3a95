package compile

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/buildkit/solver/pb"
	digest "github.com/opencontainers/go-digest"

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

// TestDevUserTakesTheBuildsIDs: Options.DevUser is the dev user's UID and
// GID everywhere envd creates or chowns for it; the zero value is 1000:1000.
func TestDevUserTakesTheBuildsIDs(t *testing.T) {
	tests := []struct {
		name     string
		ids      DevIDs
		uid, gid string
	}{
		{"default", DevIDs{}, "1000", "1000"},
		{"host user", DevIDs{UID: 1234, GID: 1234}, "1234", "1234"},
		{"existing group", DevIDs{UID: 1234, GID: 100}, "1234", "100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ug := tt.uid + ":" + tt.gid
			env := devEnv()
			env.VSCodeExtensions = []ir.Package{{Name: "ms-python.python"}}
			env.NodeJS = &ir.Toolchain{Version: "22.11.0"}
			env.UV = &ir.UV{}
			env.Downloads = []ir.Download{{URL: "https://example.com/data.bin"}}
			g, _ := compileGraph(t, env, Options{DevUser: tt.ids})
			for s, wants := range map[string][]string{
				"useradd": {
					"useradd -l -m -d /home/envd -u " + tt.uid + " -g " + tt.gid + " -s /usr/bin/zsh envd",
					"getent group " + tt.gid + " >/dev/null", "groupadd -g " + tt.gid + " envd",
					"usermod -g " + tt.gid + " -s /usr/bin/zsh envd",
					"chown -R " + ug + " /home/envd\n",
				},
				"python3 -m venv": {"chown -R " + ug + " " + VenvDir},
				"jupyterlab":      {"find " + VenvDir + " ! -user " + tt.uid + " -exec chown -h " + ug + " {} +"},
				"pip install --disable-pip-version-check uv": {"find " + VenvDir + " ! -user " + tt.uid + " -exec chown -h " + ug + " {} +"},
				"vscode-extensions":                          {"chown -R " + ug + " " + vscodeDir},
				"-C " + nodeRoot:                             {"chown -R " + ug + " " + nodeRoot},
			} {
				e := g.exec(t, s)
				args := strings.Join(e.Meta.Args, " ")
				if sh, err := exec.LookPath("sh"); err == nil {
					if out, err := exec.Command(sh, "-n", "-c", e.Meta.Args[len(e.Meta.Args)-1]).CombinedOutput(); err != nil {
						t.Errorf("%s step is not valid sh: %v %s", s, err, out)
					}
				}
				for _, want := range wants {
					if !strings.Contains(args, want) {
						t.Errorf("%s step lacks %q:\n%s", s, want, args)
					}
				}
			}
			for _, op := range g.list {
				if f := op.GetFile(); f != nil {
					for _, a := range f.Actions {
						if cp := a.GetCopy(); cp != nil && strings.HasPrefix(cp.Dest, ir.DownloadDir) {
							if u := cp.Owner.GetUser().GetByID(); strconv.Itoa(int(u)) != tt.uid {
								t.Errorf("download owned by %d, want %s", u, tt.uid)
							}
						}
					}
				}
				if tt.uid == "1000" {
					continue
				}
				if e := op.GetExec(); e != nil {
					if args := strings.Join(e.Meta.Args, " "); strings.Contains(args, "1000:1000") || strings.Contains(args, "-u 1000") {
						t.Errorf("a step still uses 1000: %s", args)
					}
				}
			}

			// The venv of a python uv installs is the user's too.
			env.Python.Version = "3.12"
			g, _ = compileGraph(t, env, Options{DevUser: tt.ids})
			if args := strings.Join(g.exec(t, "uv venv --seed").Meta.Args, " "); !strings.Contains(args, VenvDir+" && chown -R "+ug+" "+VenvDir) {
				t.Errorf("uv venv step does not chown to %s: %s", ug, args)
			}
		})
	}
}

// TestConfigOwnerStillWins: config.owner decides the toolchains' owner
// whatever the dev user's IDs; the venv stays the dev user's.
func TestConfigOwnerStillWins(t *testing.T) {
	env := devEnv()
	env.NodeJS = &ir.Toolchain{Version: "22.11.0"}
	env.Owner = &ir.Owner{UID: 4242, GID: 4343}
	g, _ := compileGraph(t, env, Options{DevUser: DevIDs{UID: 1234, GID: 100}})
	if args := strings.Join(g.exec(t, "-C "+nodeRoot).Meta.Args, " "); !strings.Contains(args, "chown -R 4242:4343 "+nodeRoot) {
		t.Errorf("node step ignores config.owner: %s", args)
	}
	if args := strings.Join(g.exec(t, "python3 -m venv").Meta.Args, " "); !strings.Contains(args, "chown -R 1234:100 "+VenvDir) {
		t.Errorf("venv not the dev user's: %s", args)
	}
}

// TestDevUserIDsAreInTheCacheKey: images for two users never share a
// step that differs for them; the zero value is 1000:1000 exactly.
func TestDevUserIDsAreInTheCacheKey(t *testing.T) {
	// The steps up to the dev user's do not read local sources, whose ops
	// carry a random local.unique: their digests are the cache's keys.
	userStep := func(env *ir.Environment, ids DevIDs) digest.Digest {
		g, _ := compileGraph(t, env, Options{DevUser: ids})
		return opDigest(t, g, g.exec(t, "useradd"))
	}
	def := userStep(devEnv(), DevIDs{})
	if d := userStep(devEnv(), DevIDs{UID: DevUID, GID: DevUID}); d != def {
		t.Errorf("1000:1000 given = %s, the zero value = %s: want the same graph", d, def)
	}
	seen := map[digest.Digest]DevIDs{def: {}}
	for _, ids := range []DevIDs{{1234, 1234}, {1234, 100}, {1235, 1234}} {
		d := userStep(devEnv(), ids)
		if other, ok := seen[d]; ok {
			t.Errorf("%v and %v compile to the same dev user step %s", ids, other, d)
		}
		seen[d] = ids
	}
	// The venv below it is keyed too: everything above both differs.
	venv := func(ids DevIDs) digest.Digest {
		g, _ := compileGraph(t, devEnv(), Options{DevUser: ids})
		return opDigest(t, g, g.exec(t, "python3 -m venv"))
	}
	if venv(DevIDs{}) == venv(DevIDs{UID: 1234, GID: 1234}) {
		t.Error("the venv step is the same for 1000 and 1234")
	}
	// An image without a dev user does not depend on it.
	a, _ := compileGraph(t, pythonEnv(), Options{})
	b, _ := compileGraph(t, pythonEnv(), Options{DevUser: DevIDs{UID: 1234, GID: 1234}})
	for d := range b.ops {
		if a.ops[d] == nil {
			t.Errorf("a non-dev image changed with the dev user's IDs: op %s", d)
		}
	}
}

// opDigest is the digest of e's op in g: BuildKit's cache key for it.
func opDigest(t *testing.T, g *graph, e *pb.ExecOp) digest.Digest {
	t.Helper()
	for d, op := range g.ops {
		if op.GetExec() == e {
			return d
		}
	}
	t.Fatal("op not in the graph")
	return ""
}

func TestBadDevIDsAreRefused(t *testing.T) {
	for _, ids := range []DevIDs{{0, 1234}, {-1, -1}, {1234, -1}} {
		if _, err := Compile(context.Background(), devEnv(), Options{Platform: LinuxAMD64, DevUser: ids}); err == nil || !strings.Contains(err.Error(), "dev user") {
			t.Errorf("%v: err = %v", ids, err)
		}
		if _, err := Build(context.Background(), devEnv(), Options{Platform: LinuxAMD64, DevUser: ids}, Solver{}); err == nil {
			t.Errorf("Build %v: no error", ids)
		}
	}
	if s := (DevIDs{}).String(); s != "1000:1000" {
		t.Errorf("zero value = %q", s)
	}
}

// TestDevUserScriptRefusesSystemAccounts: a UID the base image gives a
// system account is never taken from it; an ordinary user's is.
func TestDevUserScriptRefusesSystemAccounts(t *testing.T) {
	const msg = `uid %d is taken by the system account $old in the base image; set config.owner(uid=..., gid=...) or run envd as another user`
	for _, uid := range []int{1, 100, 999, 65534} {
		s := devUserScript(uid, 100, "/bin/bash")
		if !strings.Contains(s, fmt.Sprintf(msg, uid)+`" >&2; exit 1`) {
			t.Errorf("uid %d: no system-account error:\n%s", uid, s)
		}
		if strings.Contains(s, `userdel -r "$old"`) {
			t.Errorf("uid %d: the script removes a system account:\n%s", uid, s)
		}
	}
	for _, uid := range []int{1000, 1234, 65533, 100000} {
		s := devUserScript(uid, uid, "/bin/bash")
		if strings.Contains(s, "system account") || !strings.Contains(s, `userdel -r "$old"`) {
			t.Errorf("uid %d: want the other user removed:\n%s", uid, s)
		}
	}
}
