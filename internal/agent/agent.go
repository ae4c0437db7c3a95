//go:build unix

package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
)

// Run serves SSH and supervises init commands and services until ctx is
// done, then stops both: services get SIGTERM then SIGKILL after 5 s,
// sessions SIGHUP then SIGKILL after 2 s. It returns an error only if the
// SSH server cannot run; the supervisor's failures are logged.
func Run(ctx context.Context, cfg *Config, log *slog.Logger) error {
	srv, err := NewServer(cfg, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.SSH.Listen)
	if err != nil {
		return fmt.Errorf("ssh: %w", err)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := NewSupervisor(cfg, log).Run(ctx); err != nil {
			log.Error("supervisor stopped", "err", err)
		}
	})
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err = <-serveErr:
		log.Error("ssh server stopped", "err", err)
		cancel()
	}
	// Sessions and services stop in parallel, each within its own deadline.
	_ = srv.Close()
	wg.Wait()
	if err != nil {
		return fmt.Errorf("ssh: %w", err)
	}
	return nil
}
