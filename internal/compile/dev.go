package compile

import (
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/buildkit/client/llb"

	"envd.dev/envd/internal/contract"
	"envd.dev/envd/internal/ir"
)

// Dev environments: the pieces `envd up` needs in the image.
const (
	// The dev user, as the contract defines it.
	DevUser = contract.DevUser
	DevUID  = contract.DevUID
	DevHome = contract.DevHome
	// AgentPath is the in-container agent, the image's entrypoint.
	AgentPath = "/opt/envd/bin/envd-agent"
	// LocalAgent is the name of the directory holding the agent binary in
	// the solve session; the binary in it is named AgentBinary, or
	// Options.AgentFile (e.g. envd-agent-linux-arm64).
	LocalAgent  = "envd-agent"
	AgentBinary = "envd-agent"
	// SSHPort is where the agent's sshd listens in the container.
	SSHPort = contract.SSHPort
	// LabelDev marks images `envd up` can run.
	LabelDev = "dev.envd.dev"
)

// devPackages are what a person working in the environment expects, and what
// VS Code's server needs (tar, ps, curl).
var devPackages = []string{"sudo", "procps", "ca-certificates", "curl", "git", "less", "openssh-client", "tar"}

// shellPackage is the apt package of a shell("...") name.
func shellPackage(shell string) string {
	switch shell {
	case "zsh", "fish":
		return shell
	}
	return "bash"
}

// shellPath is the login shell of the dev user.
func (c *compiler) shellPath() string {
	switch c.env.Shell {
	case "zsh":
		return "/usr/bin/zsh"
	case "fish":
		return "/usr/bin/fish"
	}
	return "/bin/bash"
}

// systemPackages are the apt packages of the system branch.
func (c *compiler) systemPackages() []string {
	pkgs := c.env.AptNames()
	if c.env.Base.Dev {
		pkgs = append(pkgs, devPackages...)
		pkgs = append(pkgs, shellPackage(c.env.Shell))
	}
	return dedupSorted(pkgs)
}

func dedupSorted(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// agentLayer is the agent binary on its own: an independent stage merged
// into the image, so a new agent never invalidates anything else.
func (c *compiler) agentLayer() llb.State {
	file := c.opts.AgentFile
	if file == "" {
		file = AgentBinary
	}
	src := c.local(LocalAgent, llb.FollowPaths([]string{file}), llb.SharedKeyHint("envd-agent"), llb.WithCustomName("envd-agent binary"))
	return llb.Scratch().File(llb.Copy(src, file, AgentPath, &llb.CopyInfo{
		CreateDestPath: true,
		Mode:           &llb.ChmodOpt{Mode: 0o755},
	}), named("agent: "+AgentPath))
}

// devUser creates the dev user, sudo rights, the shell prompt and git
// config. It runs on the runtime, below the package layers, so it needs none
// of the packages: sudo, the shell and git arrive later in their own layer.
func (c *compiler) devUser(st llb.State) llb.State {
	var script strings.Builder
	uid, gid := c.devIDs()
	script.WriteString(devUserScript(uid, gid, c.shellPath()))
	fmt.Fprintf(&script, "mkdir -p /etc/sudoers.d && echo '%s ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/envd && chmod 0440 /etc/sudoers.d/envd\n", DevUser)
	// Login shells (ssh, VS Code) run /etc/profile, which resets PATH.
	fmt.Fprintf(&script, "echo %s > /etc/profile.d/00-envd-path.sh\n", shellJoin([]string{"export PATH=" + shellJoin([]string{c.path()})}))
	script.WriteString(promptScript)
	// By number: the group may have another name than envd (a GID the base
	// image had already).
	fmt.Fprintf(&script, "chown -R %d:%d %s\n", uid, gid, DevHome)
	st = st.Run(
		llb.Args([]string{"/bin/sh", "-c", script.String()}),
		named(fmt.Sprintf("dev environment: user %s (%d:%d), shell %s", DevUser, uid, gid, c.shellPath())),
	).Root()
	if cfg := c.gitConfig(); cfg != "" {
		st = st.File(llb.Mkfile("/etc/gitconfig", 0o644, []byte(cfg)), named("git config"))
	}
	return st
}

// systemAccount says a UID belongs to the distribution's own accounts
// (Debian and Ubuntu: below 1000, and nobody), which envd never removes.
func systemAccount(uid int) bool { return uid < 1000 || uid == 65534 }

// devUserScript is the shell that makes DevUser (home DevHome, login shell
// shell) have uid and gid, in any Debian or Ubuntu image:
//   - another user with the UID is removed when it is an ordinary one, as
//     Ubuntu 24.04's ubuntu (1000); a system account fails the step;
//   - a group the image has with the GID becomes the user's primary group,
//     whatever its name (GID 100 is Debian's users); else the group envd
//     gets the GID;
//   - an envd user with another UID (a base image built by envd for
//     someone else) is made again.
func devUserScript(uid, gid int, shell string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "set -e\nold=$(getent passwd %d | cut -d: -f1 || true)\n", uid)
	if systemAccount(uid) {
		fmt.Fprintf(&b, `if [ -n "$old" ] && [ "$old" != %[2]s ]; then echo "uid %[1]d is taken by the system account $old in the base image; set config.owner(uid=..., gid=...) or run envd as another user" >&2; exit 1; fi
`, uid, DevUser)
	} else {
		fmt.Fprintf(&b, `if [ -n "$old" ] && [ "$old" != %[1]s ]; then userdel -r "$old" 2>/dev/null || userdel "$old"; fi
`, DevUser)
	}
	fmt.Fprintf(&b, `cur=$(getent passwd %[2]s | cut -d: -f3 || true)
if [ -n "$cur" ] && [ "$cur" != %[1]d ]; then userdel %[2]s; fi
if ! getent group %[3]d >/dev/null; then
  if getent group %[2]s >/dev/null; then groupmod -g %[3]d %[2]s; else groupadd -g %[3]d %[2]s; fi
fi
getent passwd %[2]s >/dev/null || useradd -l -m -d %[4]s -u %[1]d -g %[3]d -s %[5]s %[2]s
usermod -g %[3]d -s %[5]s %[2]s
`, uid, DevUser, gid, DevHome, shell)
	return b.String()
}

// gitConfig renders git_config() as /etc/gitconfig, or "".
func (c *compiler) gitConfig() string {
	g := c.env.GitConfig
	if g == nil {
		return ""
	}
	var b strings.Builder
	quote := func(v string) string { return strconv.Quote(v) } // git reads C-style quoted values
	if g.Name != "" || g.Email != "" {
		b.WriteString("[user]\n")
		if g.Name != "" {
			fmt.Fprintf(&b, "\tname = %s\n", quote(g.Name))
		}
		if g.Email != "" {
			fmt.Fprintf(&b, "\temail = %s\n", quote(g.Email))
		}
	}
	if g.Editor != "" {
		fmt.Fprintf(&b, "[core]\n\teditor = %s\n", quote(g.Editor))
	}
	return b.String()
}

// promptScript shows the environment's name (ENVD_NAME, set by `envd up`)
// in every shell's prompt. The shells' own rc files may not exist yet, so
// the prompt goes into the user's.
const promptScript = `
cat >> /etc/bash.bashrc <<'EOS'
[ -n "$ENVD_NAME" ] && PS1="(envd:$ENVD_NAME) \u@\h:\w\$ "
EOS
# Debian's skeleton .bashrc sets PS1 after /etc/bash.bashrc; say it again last.
echo '[ -n "$ENVD_NAME" ] && PS1="(envd:$ENVD_NAME) \u@\h:\w\$ "' >> /home/envd/.bashrc
echo '[ -n "$ENVD_NAME" ] && PROMPT="(envd:$ENVD_NAME) %n@%m:%~%# "' >> /home/envd/.zshrc
mkdir -p /home/envd/.config/fish/conf.d
echo 'function fish_prompt; echo -n "(envd:$ENVD_NAME) "(whoami)@(hostname):(prompt_pwd)"> "; end' > /home/envd/.config/fish/conf.d/envd.fish
`

// vscodeDir is where VS Code's remote server looks for extensions.
const vscodeDir = DevHome + "/.vscode-server"

// vscodeExtensions installs install.vscode_extensions() with the agent,
// mounted from its own layer, from an Open VSX-compatible marketplace. It is
// a branch of its own: a package change never downloads them again.
func (c *compiler) vscodeExtensions(root llb.State) (layer, bool) {
	exts := c.env.VSCodeExtensions
	if len(exts) == 0 {
		return layer{}, false
	}
	var ids, local []string
	for _, e := range exts {
		if ir.IsLocalVSIX(e.Name) {
			p := path.Clean(e.Name)
			local = append(local, p)
			ids = append(ids, vsixDir+"/"+p)
		} else {
			ids = append(ids, e.Name)
		}
	}
	marketplace := c.opts.VSCodeMarketplace
	if marketplace == "" {
		marketplace = DefaultVSCodeMarketplace
	}
	install := append([]string{AgentPath, "vscode-extensions", "--marketplace", marketplace, "--dir", vscodeDir + "/extensions"}, ids...)
	// root's home points at the same place, for when the host user is root.
	script := shellJoin(install) + fmt.Sprintf(" && chown -R %s %s && ln -sfn %s /root/.vscode-server", c.opts.DevUser, vscodeDir, vscodeDir)
	opts := append(c.trust(),
		llb.Args([]string{"/bin/sh", "-c", script}),
		llb.AddMount(path.Dir(AgentPath), c.agentLayer(), llb.SourcePath(path.Dir(AgentPath)), llb.Readonly),
		named(fmt.Sprintf("vscode extensions: %s%s", strings.Join(ids, " "), at(exts[0].Pos))),
	)
	if len(local) > 0 {
		opts = append(opts, llb.AddMount(vsixDir, c.context(local), llb.Readonly))
	}
	return layer{key: "vscode:" + marketplace + " " + strings.Join(exts2names(exts), " "), st: root.Run(opts...).Root()}, true
}

func exts2names(exts []ir.Package) []string {
	var n []string
	for _, e := range exts {
		n = append(n, e.Name)
	}
	return n
}

// vsixDir is where extension files from the build directory are mounted.
const vsixDir = mountDir + "/vsix"

// DefaultVSCodeMarketplace is Open VSX.
const DefaultVSCodeMarketplace = "https://open-vsx.org"
