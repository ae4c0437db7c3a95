//go:build unix

package agent

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"slices"
	"sync"
	"syscall"
	"time"
)

// Supervisor runs the init commands, then keeps the services running, and
// records both in status.json.
type Supervisor struct {
	cfg *Config
	log *slog.Logger
	env []string

	// stopTimeout is SIGTERM → SIGKILL when stopping; with the SSH side it
	// must fit in Docker's 10 s stop grace period.
	stopTimeout time.Duration
	// A service that exits is restarted after minBackoff, doubling up to
	// maxBackoff; the delay resets once a run lasted resetAfter.
	minBackoff, maxBackoff, resetAfter time.Duration

	mu     sync.Mutex
	status Status
}

// NewSupervisor prepares a supervisor for cfg; Run starts it.
func NewSupervisor(cfg *Config, log *slog.Logger) *Supervisor {
	s := &Supervisor{
		cfg:         cfg,
		log:         log,
		env:         baseEnv(cfg),
		stopTimeout: 5 * time.Second,
		minBackoff:  500 * time.Millisecond,
		maxBackoff:  30 * time.Second,
		resetAfter:  60 * time.Second,
	}
	for _, c := range cfg.Init {
		s.status.Init = append(s.status.Init, InitStatus{Name: c.Name, State: StatePending})
	}
	for _, svc := range cfg.Services {
		s.status.Services = append(s.status.Services, ServiceStatus{Name: svc.Name, State: StatePending})
	}
	return s
}

// Run runs the init commands in order, then supervises the services until
// ctx is done; it returns once every process it started has been stopped.
func (s *Supervisor) Run(ctx context.Context) error {
	if err := os.MkdirAll(s.cfg.LogDir, 0o700); err != nil {
		return fmt.Errorf("supervisor: %w", err)
	}
	s.update(func(*Status) {})
	for i := range s.cfg.Init {
		if ctx.Err() != nil {
			break
		}
		s.runInit(ctx, i)
	}
	var wg sync.WaitGroup
	for i := range s.cfg.Services {
		wg.Go(func() { s.supervise(ctx, i) })
	}
	wg.Wait()
	return nil
}

func (s *Supervisor) runInit(ctx context.Context, i int) {
	c := s.cfg.Init[i]
	s.update(func(st *Status) { st.Init[i].State = StateRunning })
	s.log.Info("init: running", "name", c.Name)

	code, err := s.run(ctx, c.Name, c.Command, nil, nil)
	if err == nil && code != 0 {
		err = fmt.Errorf("exited with code %d", code)
	}
	s.update(func(st *Status) {
		in := &st.Init[i]
		in.State = StateSucceeded
		if code >= 0 {
			in.ExitCode = &code
		}
		if err != nil {
			in.State, in.Error = StateFailed, err.Error()
		}
	})
	if err != nil {
		s.log.Warn(fmt.Sprintf("init %s failed: %v", c.Name, err), "log", s.cfg.LogPath(c.Name))
		s.logLine(c.Name, "init failed: %v", err)
	}
}

// supervise runs one service until ctx is done or its restart policy says
// it is finished.
func (s *Supervisor) supervise(ctx context.Context, i int) {
	svc := s.cfg.Services[i]
	delay := s.minBackoff
	for attempt := 0; ; attempt++ {
		started := time.Now()
		code, err := s.run(ctx, svc.Name, svc.Command, svc.Env, func(pid int) {
			s.update(func(st *Status) {
				ss := &st.Services[i]
				ss.State, ss.PID, ss.StartedAt, ss.LastError = StateRunning, pid, &started, ""
				ss.Restarts = attempt
			})
			s.log.Info("service started", "name", svc.Name, "pid", pid)
		})
		if err == nil && code != 0 && ctx.Err() == nil {
			err = fmt.Errorf("exited with code %d", code)
		}
		done := ctx.Err() != nil || svc.Restart == RestartNever || (svc.Restart == RestartOnFailure && err == nil)
		if !done && time.Since(started) >= s.resetAfter {
			delay = s.minBackoff
		}
		s.update(func(st *Status) {
			ss := &st.Services[i]
			ss.State, ss.PID, ss.Restarts = StateBackoff, 0, attempt
			if done {
				ss.State = StateExited
			}
			if code >= 0 {
				ss.LastExitCode = &code
			}
			if err != nil {
				ss.LastError = err.Error()
			}
		})
		if done {
			s.log.Info("service stopped", "name", svc.Name)
			return
		}
		reason := "exited with code 0"
		if err != nil {
			reason = err.Error()
		}
		s.log.Warn(fmt.Sprintf("service %s: %s", svc.Name, reason), "restart_in", delay)
		s.logLine(svc.Name, "%s; restarting in %s", reason, delay)

		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			s.setState(i, StateExited)
			return
		case <-timer.C:
		}
		delay = min(2*delay, s.maxBackoff)
	}
}

// run starts argv, with extra added to its environment, in its own session
// with output appended to the name's log file, calls started (if set) with its pid, and waits for it to
// exit or ctx to end, when the session gets SIGTERM and, after stopTimeout,
// SIGKILL. It returns the exit code, or -1 and an error if argv could not
// be started.
func (s *Supervisor) run(ctx context.Context, name string, argv []string, extra map[string]string, started func(pid int)) (int, error) {
	env := s.env
	for _, k := range slices.Sorted(maps.Keys(extra)) {
		env = setEnv(env, k, extra[k])
	}
	if fi, err := os.Stat(s.cfg.Workdir); err != nil || !fi.IsDir() {
		return -1, fmt.Errorf("workdir %s does not exist", s.cfg.Workdir)
	}
	path, err := lookPath(argv[0], env)
	if err != nil {
		return -1, err
	}
	out, err := os.OpenFile(s.cfg.LogPath(name), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return -1, err
	}
	cmd := &exec.Cmd{
		Path: path, Args: argv, Env: env, Dir: s.cfg.Workdir,
		Stdout: out, Stderr: out, SysProcAttr: newSessionAttr(),
	}
	err = cmd.Start()
	_ = out.Close()
	if err != nil {
		return -1, err
	}
	if started != nil {
		started(cmd.Process.Pid)
	}

	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	select {
	case <-exited:
	case <-ctx.Done():
	}
	// Also after a normal exit: leftovers (workers, a server it forked)
	// would hold ports the next run needs.
	stopSession(cmd.Process.Pid, syscall.SIGTERM, s.stopTimeout)
	<-exited
	return exitCode(cmd.ProcessState), nil
}

func (s *Supervisor) setState(i int, state State) {
	s.update(func(st *Status) { st.Services[i].State = state })
}

// update changes the status and rewrites status.json.
func (s *Supervisor) update(change func(*Status)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	change(&s.status)
	s.status.UpdatedAt = time.Now().UTC()
	if err := writeStatus(s.cfg.StatusPath(), &s.status); err != nil {
		s.log.Warn("supervisor: cannot write status", "err", err)
	}
}

// logLine appends one of the agent's own lines to a service's log, so that
// `envd logs` shows why a service is not running.
func (s *Supervisor) logLine(name, format string, args ...any) {
	f, err := os.OpenFile(s.cfg.LogPath(name), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "[envd-agent %s] %s\n", time.Now().Format(time.RFC3339), fmt.Sprintf(format, args...))
}
