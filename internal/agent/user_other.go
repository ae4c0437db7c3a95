//go:build unix && !linux

package agent

import (
	"errors"
	"log/slog"
	"os"
)

// BecomeUser is only implemented on Linux, where containers run.
func BecomeUser(cfg *Config, _ *slog.Logger) error {
	if cfg.User != nil && os.Getuid() == 0 {
		return errors.New("switching to the configured user is only supported on Linux")
	}
	return nil
}
