//go:build unix

// Package agentcmd is the command line of envd-agent, the entrypoint of
// every envd environment: it serves SSH (sessions, sftp, forwarding) and
// supervises init commands and services. cmd/envd-agent is only this, and
// envd is this too when it runs as envd-agent (see cmd/envd).
//
//	envd-agent run [--config FILE]     run the agent (the container's entrypoint)
//	envd-agent run COMMAND [ARG...]    run COMMAND instead (docker run IMAGE COMMAND)
//	envd-agent status [--config FILE]  print status.json
//	envd-agent version                 print the version
//
// FILE defaults to $ENVD_AGENT_CONFIG, then /run/envd/agent.json.
package agentcmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"envd.dev/envd/internal/agent"
	"envd.dev/envd/internal/agent/reaper"
)

// Version is what `envd-agent version` prints; envd sets its own.
var Version = "dev"

// shutdownLimit ends the agent if stopping takes longer than it should
// (services get 5 s), still inside Docker's 10 s grace period.
const shutdownLimit = 8 * time.Second

const usage = `usage: envd-agent <command> [--config FILE]

commands:
  run      run the SSH server and the supervisor (the container's entrypoint)
  status   print the supervisor's status.json
  vscode-extensions [--marketplace URL] --dir DIR ID...
           install VS Code extensions (used at build time)
  version  print the version

FILE defaults to $` + agent.ConfigPathEnv + `, then ` + agent.DefaultConfigPath + `.
`

// Main runs the agent's command line (args without the program name) and
// returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return runAgent(args[1:], stderr)
	case "status":
		return runStatus(args[1:], stdout, stderr)
	case "vscode-extensions":
		return runVSCodeExtensions(args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, Version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "envd-agent: unknown command %q\n%s", args[0], usage)
	return 2
}

// parseConfigFlag parses --config for the run and status commands.
func parseConfigFlag(name string, args []string, stderr io.Writer) (string, bool) {
	fset := flag.NewFlagSet(name, flag.ContinueOnError)
	fset.SetOutput(stderr)
	path := agent.DefaultConfigPath
	if env := os.Getenv(agent.ConfigPathEnv); env != "" {
		path = env
	}
	fset.StringVar(&path, "config", path, "agent config file")
	if err := fset.Parse(args); err != nil {
		return "", false
	}
	if fset.NArg() > 0 {
		fmt.Fprintf(stderr, "envd-agent %s: unexpected argument %q\n", name, fset.Arg(0))
		return "", false
	}
	return path, true
}

func runAgent(args []string, stderr io.Writer) int {
	// `docker run IMAGE python train.py` reaches us as `run python train.py`:
	// run that command, as a plain image would.
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return execCommand(args, stderr)
	}
	path, ok := parseConfigFlag("run", args, stderr)
	if !ok {
		return 2
	}
	if reaper.ShouldReap() {
		return reaper.ForkReap()
	}
	cfg, err := agent.LoadConfig(path)
	if err != nil {
		fmt.Fprintf(stderr, "envd-agent: %v\n", err)
		return 1
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	log.Info("envd-agent starting", "version", Version, "pid", os.Getpid(), "config", path)
	if err := agent.BecomeUser(cfg, log); err != nil {
		log.Error("envd-agent failed", "err", err)
		return 1
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second signal takes the default action: exit now
		time.AfterFunc(shutdownLimit, func() {
			log.Error("shutdown took too long; exiting")
			os.Exit(1)
		})
	}()

	if err := agent.Run(ctx, cfg, log); err != nil {
		log.Error("envd-agent failed", "err", err)
		return 1
	}
	return 0
}

// execCommand replaces the agent with argv.
func execCommand(argv []string, stderr io.Writer) int {
	bin, err := exec.LookPath(argv[0])
	if err != nil {
		fmt.Fprintf(stderr, "envd-agent: %v\n", err)
		return 127
	}
	err = syscall.Exec(bin, argv, os.Environ())
	fmt.Fprintf(stderr, "envd-agent: exec %s: %v\n", bin, err)
	return 126
}

func runStatus(args []string, stdout, stderr io.Writer) int {
	path, ok := parseConfigFlag("status", args, stderr)
	if !ok {
		return 2
	}
	cfg, err := agent.LoadConfig(path)
	if err != nil {
		fmt.Fprintf(stderr, "envd-agent: %v\n", err)
		return 1
	}
	data, err := os.ReadFile(cfg.StatusPath())
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(stderr, "envd-agent: no status yet (%s does not exist); is the agent running?\n", cfg.StatusPath())
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "envd-agent: %v\n", err)
		return 1
	}
	_, _ = stdout.Write(data)
	return 0
}
