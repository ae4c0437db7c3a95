package agent

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Status is the content of <log_dir>/status.json. The supervisor rewrites it
// on every change; envd on the host reads it with `docker exec`.
type Status struct {
	// UpdatedAt is when the file was last written.
	UpdatedAt time.Time `json:"updated_at"`
	// Init has one entry per Config.Init command, in order.
	Init []InitStatus `json:"init"`
	// Services has one entry per Config.Services entry, in order.
	Services []ServiceStatus `json:"services"`
}

// State is the state of an init command or a service.
type State string

const (
	// StatePending: not started yet (services wait for init commands).
	StatePending State = "pending"
	// StateRunning: the process is running.
	StateRunning State = "running"
	// StateBackoff: a service exited or failed to start and waits to restart.
	StateBackoff State = "backoff"
	// StateExited: a service stopped for good (restart policy, or the agent
	// is shutting down).
	StateExited State = "exited"
	// StateSucceeded: an init command exited 0.
	StateSucceeded State = "succeeded"
	// StateFailed: an init command failed to start or exited non-zero.
	StateFailed State = "failed"
)

// InitStatus is the state of one init command.
type InitStatus struct {
	Name  string `json:"name"`
	State State  `json:"state"`
	// ExitCode is set once the command has exited (128+n if killed by signal n).
	ExitCode *int `json:"exit_code,omitempty"`
	// Error says why the command failed, if it did.
	Error string `json:"error,omitempty"`
}

// ServiceStatus is the state of one service.
type ServiceStatus struct {
	Name  string `json:"name"`
	State State  `json:"state"`
	// PID of the running process; 0 when not running.
	PID int `json:"pid,omitempty"`
	// StartedAt is when the current (or last) process started.
	StartedAt *time.Time `json:"started_at,omitempty"`
	// Restarts counts starts after the first one, including failed starts.
	Restarts int `json:"restarts"`
	// LastExitCode is the exit code of the last process (128+n if killed by
	// signal n); absent until a process has exited.
	LastExitCode *int `json:"last_exit_code,omitempty"`
	// LastError is why the last start failed or the last process exited
	// non-zero; cleared when a process starts.
	LastError string `json:"last_error,omitempty"`
}

// ReadStatus reads a status.json written by the supervisor.
func ReadStatus(path string) (*Status, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var st Status
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &st, nil
}

// writeStatus replaces path atomically, so a reader never sees half a file.
func writeStatus(path string, st *Status) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".status-*.json")
	if err != nil {
		return err
	}
	_, err = tmp.Write(append(data, '\n'))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// CreateTemp makes the file 0600; the host reads it as the same user,
		// but make it readable like the logs next to it.
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
	}
	return err
}
