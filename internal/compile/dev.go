package compile

import (
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"

	"envd.dev/envd/internal/contract"
	"envd.dev/envd/internal/ir"
	"github.com/moby/buildkit/client/llb"
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
	// the solve session; the binary in it is named AgentBinary.
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
	src := llb.Local(LocalAgent, llb.FollowPaths([]string{AgentBinary}), llb.SharedKeyHint("envd-agent"), llb.WithCustomName("envd-agent binary"))
	return llb.Scratch().File(llb.Copy(src, AgentBinary, AgentPath, &llb.CopyInfo{
		CreateDestPath: true,
		Mode:           &llb.ChmodOpt{Mode: 0o755},
	}), named("agent: "+AgentPath))
}

// devUser creates the dev user, sudo rights, the shell prompt and git
// config. It runs on the runtime, below the package layers, so it needs none
// of the packages: sudo, the shell and git arrive later in their own layer.
func (c *compiler) devUser(st llb.State) llb.State {
	var script strings.Builder
	fmt.Fprintf(&script, `set -e
# Ubuntu 24.04 ships a user with UID %[1]d; envd's user takes its place.
old=$(getent passwd %[1]d | cut -d: -f1 || true)
if [ -n "$old" ] && [ "$old" != %[2]s ]; then userdel -r "$old" 2>/dev/null || userdel "$old"; fi
old=$(getent group %[1]d | cut -d: -f1 || true)
if [ -n "$old" ] && [ "$old" != %[2]s ]; then groupdel "$old"; fi
getent group %[2]s >/dev/null || groupadd -g %[1]d %[2]s
getent passwd %[2]s >/dev/null || useradd -m -d %[3]s -u %[1]d -g %[1]d -s %[4]s %[2]s
usermod -s %[4]s %[2]s
mkdir -p /etc/sudoers.d && echo '%[2]s ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/envd && chmod 0440 /etc/sudoers.d/envd
`, DevUID, DevUser, DevHome, c.shellPath())
	// Login shells (ssh, VS Code) run /etc/profile, which resets PATH.
	fmt.Fprintf(&script, "echo %s > /etc/profile.d/00-envd-path.sh\n", shellJoin([]string{"export PATH=" + shellJoin([]string{c.path()})}))
	script.WriteString(promptScript)
	st = st.Run(
		llb.Args([]string{"/bin/sh", "-c", script.String()}),
		named(fmt.Sprintf("dev environment: user %s, shell %s", DevUser, c.shellPath())),
	).Root()
	if cfg := c.gitConfig(); cfg != "" {
		st = st.File(llb.Mkfile("/etc/gitconfig", 0o644, []byte(cfg)), named("git config"))
	}
	return st
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
chown -R envd:envd /home/envd
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
	script := shellJoin(install) + fmt.Sprintf(" && chown -R %d:%d %s && ln -sfn %s /root/.vscode-server", DevUID, DevUID, vscodeDir, vscodeDir)
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
