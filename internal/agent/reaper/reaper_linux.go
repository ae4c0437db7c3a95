package reaper

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// forwarded are the signals PID 1 passes on to the agent. Docker stop sends
// SIGTERM; a terminal sends SIGINT, SIGHUP or SIGQUIT.
var forwarded = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT}

// ForkReap runs this executable again with the same arguments, reaps every
// child until that one exits, and returns the exit code to exit with: the
// agent's own, or 128+n if signal n killed it.
func ForkReap() int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "envd-agent: %v\n", err)
		return 1
	}
	return run(exe, os.Args, os.Environ())
}

func run(path string, argv, env []string) int {
	// Before the child exists, so that no signal is lost in between.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, forwarded...)
	defer signal.Stop(sigs)

	child, err := os.StartProcess(path, argv, &os.ProcAttr{
		Env:   env,
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
		// Its own process group, so that a Ctrl-C on `docker run -it`
		// reaches it once, through us, not also straight from the terminal
		// (a second signal makes the agent exit without cleaning up).
		Sys: &syscall.SysProcAttr{Setpgid: true},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "envd-agent: %v\n", err)
		return 1
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case sig := <-sigs:
				_ = child.Signal(sig)
			case <-done:
				return
			}
		}
	}()
	return reap(child.Pid)
}

// reap waits for any child, so orphans do not pile up as zombies, until
// pid exits, and returns its exit code.
func reap(pid int) int {
	for {
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(-1, &ws, 0, nil)
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			fmt.Fprintf(os.Stderr, "envd-agent: wait: %v\n", err)
			return 1
		case got != pid:
			continue // an adopted orphan
		case ws.Signaled():
			return 128 + int(ws.Signal())
		default:
			return ws.ExitStatus()
		}
	}
}
