package cli

// envd sync, and the background forwarder behind envd up -d.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"envd.dev/envd/internal/envs"
	"envd.dev/envd/internal/forward"
)

func newSyncCmd(st streams) *cobra.Command {
	var toEnv, fromEnv bool
	c := &cobra.Command{
		Use:   "sync [NAME [PATH]] --to-env|--from-env",
		Short: "Copy project changes between this machine and an environment that holds a copy (Kubernetes)",
		Long: "An environment in a cluster works on a copy of the project directory, made by its first envd up.\n" +
			"--to-env copies what changed here into it; --from-env brings what changed there back here.\n" +
			"Only files that differ (by size and time) move; .envdignore is honoured; nothing is deleted.\n" +
			"PATH limits the copy to a file or directory of the project. On Docker the directory is shared: nothing to do.",
		Args: maxArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			if toEnv == fromEnv {
				return usageError{errors.New("say which way: --to-env (this machine to the environment) or --from-env (back here)")}
			}
			name, err := envName(args)
			if err != nil {
				return err
			}
			rel := ""
			if len(args) == 2 {
				rel = args[1]
			}
			s, err := openSession(c.Context(), st)
			if err != nil {
				return err
			}
			defer s.Close()
			res, err := s.m.Sync(c.Context(), name, rel, toEnv)
			if err != nil {
				return err
			}
			if res.Shared {
				fmt.Fprintf(st.out, "%s shares the project directory with this machine (%s runtime): nothing to copy\n", name, s.rt.Kind())
				return nil
			}
			fmt.Fprintf(st.out, "%s -> %s: %s\n", res.From, res.To, res.Stats)
			return nil
		},
	}
	c.Flags().BoolVar(&toEnv, "to-env", false, "copy changes from this machine into the environment")
	c.Flags().BoolVar(&fromEnv, "from-env", false, "copy changes from the environment to this machine")
	return c
}

// newForwardCmd is the background forwarder `envd up -d` starts (hidden):
// it listens on the given local addresses, records them with its pid, and
// forwards until envd down stops it.
func newForwardCmd(st streams) *cobra.Command {
	var ports []string
	c := &cobra.Command{
		Use:    "forward NAME --port NAME=PORT:HOST:LOCALPORT...",
		Short:  "Forward an environment's ports to this machine (what envd up -d runs in the background)",
		Hidden: true,
		Args:   exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			var fs []forward.Forward
			for _, p := range ports {
				f, err := envs.ParsePortFlag(p)
				if err != nil {
					return usageError{err}
				}
				fs = append(fs, f)
			}
			return runForwarder(c.Context(), st, args[0], fs)
		},
	}
	c.Flags().StringArrayVar(&ports, "port", nil, "NAME=PORT:HOST:LOCALPORT (repeatable)")
	return c
}

func runForwarder(ctx context.Context, st streams, name string, fs []forward.Forward) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	s, err := openSession(ctx, st)
	if err != nil {
		return err
	}
	defer s.Close()
	fw, err := forward.Listen(fs, s.m.Dialer(name), func(format string, args ...any) {
		fmt.Fprintf(st.err, "envd forward: "+format+"\n", args...)
	})
	if err != nil {
		return err
	}
	defer fw.Close()
	if err := s.m.RecordForwarder(name, forward.State{PID: os.Getpid(), Forwards: fw.Forwards()}); err != nil {
		return err
	}
	return fw.Serve(ctx)
}
