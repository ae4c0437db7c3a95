package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"envd.dev/envd/internal/contract"
)

// DefaultConfigPath is where envd mounts the agent's config in the container.
const DefaultConfigPath = contract.RunDir + "/" + contract.AgentConfigFile

// ConfigPathEnv names the environment variable that overrides DefaultConfigPath.
const ConfigPathEnv = contract.AgentConfigEnv

// DefaultListen is the SSH address used when SSHConfig.Listen is empty. The
// port is above 1024 because the agent does not run as root.
var DefaultListen = contract.SSHListen()

// Config is the agent's configuration. envd writes it as JSON on the host;
// unknown fields are ignored so that a newer envd can drive an older agent.
type Config struct {
	// SSH configures the SSH server.
	SSH SSHConfig `json:"ssh"`
	// Workdir is the directory sessions, init commands and services start in
	// (the mounted project). Default: the user's home directory.
	Workdir string `json:"workdir,omitempty"`
	// OwnWorkdir: the workdir is the environment's own volume, not a host
	// directory; when root owns it, the agent gives it to User.
	OwnWorkdir bool `json:"own_workdir,omitempty"`
	// LogDir receives one <name>.log per init command and service, and
	// status.json. Default: $XDG_STATE_HOME/envd/logs or
	// ~/.local/state/envd/logs.
	LogDir string `json:"log_dir,omitempty"`
	// Env is added to the container's environment for every session, init
	// command and service (it wins over the container's values).
	Env map[string]string `json:"env,omitempty"`
	// Init commands run once, in order, each to completion, before services
	// start. A failing one is logged and recorded in status.json; the rest
	// still run.
	Init []Command `json:"init,omitempty"`
	// Services are long-running processes, each restarted with backoff
	// according to its restart policy.
	Services []Service `json:"services,omitempty"`
	// User is the account everything runs as when the agent starts as root
	// (see BecomeUser); envd starts it so to give the image's user the host
	// user's UID. Ignored when the agent does not start as root.
	User *User `json:"user,omitempty"`
}

// User is an account of the image, with the IDs it must have at run time.
type User struct {
	// Name of the account in /etc/passwd (created if missing).
	Name string `json:"name"`
	// UID and GID the account gets: the host user's, so that files in the
	// mounted project keep their owner.
	UID int `json:"uid"`
	GID int `json:"gid"`
	// Home is the account's home directory.
	Home string `json:"home"`
}

// SSHConfig configures the agent's SSH server.
type SSHConfig struct {
	// Listen is the TCP address to listen on. Default: DefaultListen.
	Listen string `json:"listen,omitempty"`
	// HostKey is the path of the server's private host key, in OpenSSH or
	// PEM format (as written by golang.org/x/crypto/ssh.MarshalPrivateKey).
	// Required.
	HostKey string `json:"host_key"`
	// AuthorizedKeys is the path of an authorized_keys file. It is re-read on
	// every authentication attempt so keys can be rotated while the container
	// runs. Key options (command=, from=, ...) are ignored. Required.
	AuthorizedKeys string `json:"authorized_keys"`
	// Shell runs commands (shell -c CMD) and interactive logins (shell -l).
	// Default: /bin/bash if it exists, else /bin/sh.
	Shell string `json:"shell,omitempty"`
}

// Command is a named command line, run without a shell.
type Command struct {
	// Name identifies the command in logs and status.json, and names its log
	// file. Letters, digits, '.', '_' and '-' only.
	Name string `json:"name"`
	// Command is the argv; Command[0] is looked up in the PATH of the
	// environment the agent gives it (so Config.Env may change PATH).
	Command []string `json:"command"`
}

// Service is a long-running process supervised by the agent.
type Service struct {
	// Name identifies the service in logs and status.json, and names its log
	// file. Letters, digits, '.', '_' and '-' only.
	Name string `json:"name"`
	// Command is the argv, looked up like Command.Command.
	Command []string `json:"command"`
	// Env is added to the service's environment only. Secrets go here, not
	// in Command: every user of the host can read a process's argv, only its
	// owner its environment.
	Env map[string]string `json:"env,omitempty"`
	// Restart says when the service is restarted after it exits.
	// Default: RestartAlways.
	Restart RestartPolicy `json:"restart,omitempty"`
}

// RestartPolicy says when a service is restarted after it exits.
type RestartPolicy string

const (
	// RestartAlways restarts the service whatever its exit status.
	RestartAlways RestartPolicy = "always"
	// RestartOnFailure restarts it only after a non-zero exit or a failed start.
	RestartOnFailure RestartPolicy = "on-failure"
	// RestartNever runs it once.
	RestartNever RestartPolicy = "never"
)

var (
	namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	userPattern = regexp.MustCompile(`^[a-z_][a-z0-9_.-]*$`)
)

// LoadConfig reads the JSON config at path, fills in defaults that depend on
// the container (home directory, available shell) and validates it.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("agent config: %w", err)
	}
	var cfg Config
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("agent config %s: %w", path, err)
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("agent config %s: %w", path, err)
	}
	return &cfg, nil
}

// setDefaults fills empty fields from the environment the agent runs in.
func (c *Config) setDefaults() {
	home, err := os.UserHomeDir()
	if err != nil {
		home = "/"
	}
	if c.User != nil && os.Getuid() == 0 {
		home = c.User.Home // BecomeUser will switch to it
	}
	if c.SSH.Listen == "" {
		c.SSH.Listen = DefaultListen
	}
	if c.SSH.Shell == "" {
		c.SSH.Shell = "/bin/sh"
		if _, err := os.Stat("/bin/bash"); err == nil {
			c.SSH.Shell = "/bin/bash"
		}
	}
	if c.Workdir == "" {
		c.Workdir = home
	}
	if c.LogDir == "" {
		state := os.Getenv("XDG_STATE_HOME")
		if state == "" {
			state = filepath.Join(home, ".local", "state")
		}
		c.LogDir = filepath.Join(state, "envd", "logs")
	}
	for i := range c.Services {
		if c.Services[i].Restart == "" {
			c.Services[i].Restart = RestartAlways
		}
	}
}

// Validate reports every problem in the config. It does not touch the file
// system, so envd can call it on the host before writing the file.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if c.SSH.HostKey == "" {
		bad("ssh.host_key is required")
	}
	if c.SSH.AuthorizedKeys == "" {
		bad("ssh.authorized_keys is required")
	}
	if c.SSH.Shell != "" && !filepath.IsAbs(c.SSH.Shell) {
		bad("ssh.shell %q must be an absolute path", c.SSH.Shell)
	}
	if c.Workdir != "" && !filepath.IsAbs(c.Workdir) {
		bad("workdir %q must be an absolute path", c.Workdir)
	}
	if c.LogDir != "" && !filepath.IsAbs(c.LogDir) {
		bad("log_dir %q must be an absolute path", c.LogDir)
	}
	if u := c.User; u != nil {
		if !userPattern.MatchString(u.Name) {
			bad("user.name %q is not a valid account name", u.Name)
		}
		if u.UID < 0 || u.GID < 0 {
			bad("user %q: uid and gid must not be negative", u.Name)
		}
		if !filepath.IsAbs(u.Home) {
			bad("user.home %q must be an absolute path", u.Home)
		}
	}
	for k := range c.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			bad("env: invalid variable name %q", k)
		}
	}

	seen := map[string]string{}
	checkName := func(kind string, i int, name string, argv []string) {
		switch {
		case !namePattern.MatchString(name):
			bad("%s[%d]: name %q must be letters, digits, '.', '_' or '-'", kind, i, name)
		case seen[name] != "":
			bad("%s[%d]: name %q is already used by %s", kind, i, name, seen[name])
		default:
			seen[name] = kind
		}
		if len(argv) == 0 || argv[0] == "" {
			bad("%s[%d] (%s): command is empty", kind, i, name)
		}
	}
	for i, cmd := range c.Init {
		checkName("init", i, cmd.Name, cmd.Command)
	}
	for i, svc := range c.Services {
		checkName("services", i, svc.Name, svc.Command)
		for k := range svc.Env {
			if k == "" || strings.ContainsAny(k, "=\x00") {
				bad("services[%d] (%s): env: invalid variable name %q", i, svc.Name, k)
			}
		}
		switch svc.Restart {
		case "", RestartAlways, RestartOnFailure, RestartNever:
		default:
			bad("services[%d] (%s): restart %q must be %q, %q or %q",
				i, svc.Name, svc.Restart, RestartAlways, RestartOnFailure, RestartNever)
		}
	}
	return errors.Join(errs...)
}

// StatusPath is where the supervisor writes status.json.
func (c *Config) StatusPath() string { return filepath.Join(c.LogDir, "status.json") }

// LogPath is the log file of the init command or service called name.
func (c *Config) LogPath(name string) string { return filepath.Join(c.LogDir, name+".log") }
