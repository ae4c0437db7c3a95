// Package cli is envd's command line: the only package that writes to the
// terminal. Progress goes to stderr, results to stdout.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// Exit codes.
const (
	exitError     = 1
	exitUsage     = 2
	exitInterrupt = 130
)

// usageError marks a mistake in the command line itself.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// streams are where a command writes; tests swap them.
type streams struct {
	out, err io.Writer
}

// Main runs envd with args and returns the process exit code.
func Main(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	defer startProfile()()
	return run(ctx, args, streams{out: os.Stdout, err: os.Stderr})
}

func run(ctx context.Context, args []string, s streams) int {
	root := newRoot(s)
	root.SetArgs(rewriteShorthands(args))
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	if ctx.Err() != nil {
		fmt.Fprintln(s.err, "envd: interrupted")
		return exitInterrupt
	}
	var code exitCodeError
	if errors.As(err, &code) {
		return int(code) // a remote command's own status; it printed its own errors
	}
	fmt.Fprintf(s.err, "error: %v\n", err)
	var u usageError
	if errors.As(err, &u) {
		return exitUsage
	}
	return exitError
}

func newRoot(s streams) *cobra.Command {
	root := &cobra.Command{
		Use:           "envd",
		Short:         "Development environments for machine learning, built by BuildKit",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&contextFlag, "context", "", "use this context for the command (default: the current one; see envd context ls)")
	root.SetOut(s.out)
	root.SetErr(s.err)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w\n  see: %s --help", err, c.CommandPath())}
	})
	root.AddCommand(
		newBuildCmd(s),
		newVersionCmd(s),
		newBootstrapCmd(s),
		newContextCmd(s),
		newUpCmd(s),
		newDownCmd(s, false),
		newDownCmd(s, true),
		newLsCmd(s),
		newEnvCmd(s),
		newSSHCmd(s),
		newExecCmd(s),
		newLogsCmd(s),
		newImagesCmd(s),
		newSyncCmd(s),
		newForwardCmd(s),
	)
	addLanguageCommands(root, s)
	return root
}

// exactArgs is cobra.ExactArgs reported as a usage error.
func exactArgs(n int) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(c, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}
