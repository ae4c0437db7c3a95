// Package runtime runs environments: containers made from envd images, each
// with the agent as its init, sshd and supervisor. Docker is the only
// runtime today; the interface leaves room for Kubernetes.
package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Container labels. They are how envd finds its environments again.
const (
	LabelName       = "dev.envd.name"
	LabelProjectDir = "dev.envd.project-dir"
	LabelStateDir   = "dev.envd.state-dir"
	LabelUser       = "dev.envd.user"
	// LabelSpec is the digest of the Spec the container was made from, so
	// that envd up can tell whether a stopped one is what the user asks for.
	LabelSpec = "dev.envd.spec"
)

// Spec is one environment to start.
type Spec struct {
	Name  string
	Image string
	// Mounts are bind mounts; the first is usually the project directory.
	Mounts []Mount
	// Ports are published on the host; SSH is one of them.
	Ports []Port
	Env   map[string]string
	// GPUs: "" none, "all", or a count such as "2".
	GPUs    string
	CPUs    float64
	Memory  int64 // bytes; 0 = no limit
	ShmSize int64 // bytes; 0 = Docker's default
	Labels  map[string]string
	// User the container's init starts as (the agent drops to the dev user).
	User string
}

// Mount binds a host path into the container.
type Mount struct {
	Source, Target string
	ReadOnly       bool
}

// Port publishes a container port. HostPort 0 lets the runtime pick a free one.
type Port struct {
	Name          string `json:"name"`
	ContainerPort int    `json:"container_port"`
	HostIP        string `json:"host_ip"`
	HostPort      int    `json:"host_port"`
}

// Env is a running (or stopped) environment.
type Env struct {
	Name       string            `json:"name"`
	ID         string            `json:"id"`
	Image      string            `json:"image"`
	Status     string            `json:"status"`
	Running    bool              `json:"running"`
	Created    time.Time         `json:"created"`
	Ports      []Port            `json:"ports"`
	Labels     map[string]string `json:"-"`
	ProjectDir string            `json:"project_dir,omitempty"`

	ImageID string `json:"-"` // the image it runs, whatever its tag says now
	// RestartCount is how often Docker's restart policy started it again.
	RestartCount int `json:"-"`
}

// Port returns the host side of a published container port, or nil.
func (e *Env) Port(containerPort int) *Port {
	for i := range e.Ports {
		if e.Ports[i].ContainerPort == containerPort {
			return &e.Ports[i]
		}
	}
	return nil
}

// Runtime runs environments.
type Runtime interface {
	// Start creates and starts the environment; on failure nothing is left.
	Start(ctx context.Context, s Spec) (*Env, error)
	// Get returns the environment, or ErrNotFound.
	Get(ctx context.Context, name string) (*Env, error)
	List(ctx context.Context) ([]Env, error)
	// Resume starts a stopped environment's container again, as it was.
	Resume(ctx context.Context, name string) (*Env, error)
	// Stop stops the environment within the grace period, keeping it.
	Stop(ctx context.Context, name string) error
	// Changes lists the files the container changed in its own layer
	// (not in mounts): what removing it loses.
	Changes(ctx context.Context, name string) ([]Change, error)
	// Remove stops (within the grace period) and removes the environment.
	Remove(ctx context.Context, name string) error
	// Logs streams the container's own output (the agent's).
	Logs(ctx context.Context, name string, follow bool, tail int) (io.ReadCloser, error)
}

// Change is one path a container added, modified or deleted.
type Change struct {
	Path string
	Kind string // "A", "C" or "D", as docker diff shows them
}

// ErrNotFound: no environment of that name.
var ErrNotFound = errors.New("environment not found")

// PortInUseError: a requested host port is taken.
type PortInUseError struct {
	Addr string
	Err  error
}

func (e *PortInUseError) Error() string {
	return fmt.Sprintf("port %s is already in use: %v\n  hint: stop what listens there, or choose another host_port in runtime.expose (0 picks a free one)", e.Addr, e.Err)
}

// NoGPURuntimeError: GPUs were asked for but Docker cannot provide them.
type NoGPURuntimeError struct{ Err error }

func (e *NoGPURuntimeError) Error() string {
	return fmt.Sprintf("this environment asks for GPUs, but Docker has no NVIDIA runtime: %v\n  hint: install the NVIDIA driver and nvidia-container-toolkit (then restart Docker), or run without GPUs: envd up --no-gpu", e.Err)
}
