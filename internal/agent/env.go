//go:build unix

package agent

import (
	"os"
	"os/user"
	"sort"
	"strconv"
	"strings"
)

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// baseEnv is the environment of every process the agent starts: the
// container's, the user's identity (Docker sets HOME but not USER, LOGNAME or
// SHELL), then Config.Env.
func baseEnv(cfg *Config) []string {
	env := os.Environ()
	name, home := identity()
	if os.Getenv("HOME") == "" {
		env = setEnv(env, "HOME", home)
	}
	if os.Getenv("PATH") == "" {
		env = setEnv(env, "PATH", defaultPath)
	}
	env = setEnv(env, "USER", name)
	env = setEnv(env, "LOGNAME", name)
	env = setEnv(env, "SHELL", cfg.SSH.Shell)

	keys := make([]string, 0, len(cfg.Env))
	for k := range cfg.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = setEnv(env, k, cfg.Env[k])
	}
	return env
}

// identity returns the user's name and home directory, falling back to the
// uid and "/" when the uid has no /etc/passwd entry (docker run -u 1234).
func identity() (name, home string) {
	name, home = strconv.Itoa(os.Getuid()), "/"
	if u, err := user.Current(); err == nil {
		name, home = u.Username, u.HomeDir
	}
	if h := os.Getenv("HOME"); h != "" {
		home = h
	}
	return name, home
}

// setEnv returns env with key set to value, replacing earlier entries.
func setEnv(env []string, key, value string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k != key {
			out = append(out, kv)
		}
	}
	return append(out, key+"="+value)
}

// getEnv returns the value of key in env, the last one winning as in os/exec.
func getEnv(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, _ := strings.Cut(env[i], "="); k == key {
			return v
		}
	}
	return ""
}
