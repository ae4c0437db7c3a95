// Package contract is what the image, the runtimes, the agent and the CLI
// agree on about a running environment: where its secrets and config are,
// which ports its services listen on, who the dev user is, and the labels
// by which envd finds its environments again. Each value lives here only.
package contract

import (
	"path"
	"strconv"
)

// The environment's state dir: host key, the user's public key and the
// agent's config. Docker bind-mounts it read-only from the host; Kubernetes
// mounts a Secret there. Nothing in it is ever part of the image.
const (
	RunDir             = "/run/envd"
	HostKeyFile        = "ssh_host_ed25519_key"
	AuthorizedKeysFile = "authorized_keys"
	AgentConfigFile    = "agent.json"
	// AgentConfigEnv tells the agent where its config is.
	AgentConfigEnv = "ENVD_AGENT_CONFIG"
	// NameEnv carries the environment's name into it.
	NameEnv = "ENVD_NAME"
)

// Ports the environment's own services listen on.
const (
	SSHPort     = 2222
	JupyterPort = 8888
)

// The dev user owns the home directory and the venv. envd up gives it the
// host user's UID at start (root stays root), so one image serves a team.
const (
	DevUser = "envd"
	DevUID  = 1000
	DevHome = "/home/envd"
)

// Labels on containers, pods and the other objects envd makes.
const (
	LabelName       = "dev.envd.name"
	LabelProjectDir = "dev.envd.project-dir"
	// LabelProjectPath is where the project is inside.
	LabelProjectPath = "dev.envd.project-path"
	LabelStateDir    = "dev.envd.state-dir"
	LabelUser        = "dev.envd.user"
	// LabelOwner names the envd that made an environment (its user key's
	// fingerprint): another user of the same Docker, server or namespace
	// has another, and may not take the environment over.
	LabelOwner        = "dev.envd.owner"
	LabelForwardAgent = "dev.envd.forward-agent"
	// LabelCommands is the build file's runtime.command, as JSON: envd exec
	// --command NAME runs one.
	LabelCommands = "dev.envd.commands"
	// LabelSpec is the digest of the spec an environment was made from, so
	// envd up can tell whether a stopped one is what the user asks for now.
	LabelSpec = "dev.envd.spec"
	// LabelPorts lists, as JSON, the ports of an environment that shares
	// the host's network (rootless Podman without slirp4netns): the engine
	// publishes nothing, so the container says where its services listen.
	LabelPorts = "dev.envd.ports"
)

// RunPath is a file of the state dir inside the environment.
func RunPath(file string) string { return path.Join(RunDir, file) }

// ProjectPath is where the project directory appears inside.
func ProjectPath(project string) string { return path.Join(DevHome, project) }

// SSHListen is the agent's sshd address.
func SSHListen() string { return "0.0.0.0:" + strconv.Itoa(SSHPort) }
