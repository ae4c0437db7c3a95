// Package xdg gives envd's config, data and cache directories, following the
// XDG Base Directory spec. Root uses the same scheme as everyone else, so
// `sudo envd` and a root shell see the same state as long as HOME agrees.
package xdg

import (
	"os"
	"path/filepath"
)

const app = "envd"

// ConfigDir is $XDG_CONFIG_HOME/envd, default ~/.config/envd.
func ConfigDir() string { return dir("XDG_CONFIG_HOME", ".config") }

// DataDir is $XDG_DATA_HOME/envd, default ~/.local/share/envd.
func DataDir() string { return dir("XDG_DATA_HOME", filepath.Join(".local", "share")) }

// CacheDir is $XDG_CACHE_HOME/envd, default ~/.cache/envd.
func CacheDir() string { return dir("XDG_CACHE_HOME", ".cache") }

func dir(env, fallback string) string {
	// The spec says a relative value must be ignored.
	if v := os.Getenv(env); v != "" && filepath.IsAbs(v) {
		return filepath.Join(v, app)
	}
	return filepath.Join(home(), fallback, app)
}

func home() string {
	if h, err := os.UserHomeDir(); err == nil {
		return h
	}
	// No $HOME at all (e.g. a bare systemd unit): keep state somewhere stable
	// rather than in the current directory.
	return "/root"
}
