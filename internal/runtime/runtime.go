// Package runtime is what envd asks of a place that runs environments, in
// envd's own terms: start one from a spec (image, project, resources, ports,
// secrets), find it again, dial a port inside it, remove it. It also says
// how an image envd built gets there and how the project directory does.
// Docker, a server's Docker over ssh (this package) and Kubernetes
// (package kube) implement it.
package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"envd.dev/envd/internal/contract"
)

// Label names, as the contract defines them.
const (
	LabelName       = contract.LabelName
	LabelProjectDir = contract.LabelProjectDir
	LabelStateDir   = contract.LabelStateDir
	LabelUser       = contract.LabelUser
	LabelSpec       = contract.LabelSpec
)

// Delivery is how an image envd built reaches the runtime.
type Delivery int

const (
	// DeliverLocal: into the local Docker's image store (the hand-over
	// registry or a tarball load); the runtime runs it by tag.
	DeliverLocal Delivery = iota
	// DeliverPush: pushed to a registry the runtime pulls from; it runs the
	// image by digest.
	DeliverPush
	// DeliverRemote: built by the builder on the runtime's own machine and
	// handed over there, into that Docker; nothing crosses the network.
	DeliverRemote
)

// ProjectTransport is how the project directory reaches the environment.
type ProjectTransport int

const (
	// ProjectShared: bind-mounted from this machine; edits show both ways.
	ProjectShared ProjectTransport = iota
	// ProjectCopied: copied into the environment's own volume on its first
	// start; envd sync moves changes either way.
	ProjectCopied
)

// Spec is one environment to start.
type Spec struct {
	Name  string
	Image string
	// Project is the project directory on this machine and inside.
	Project Project
	// Mounts are further directories of this machine (runtime.mount, -v);
	// only a runtime whose project is shared can have them.
	Mounts []Mount
	// Ports are the environment's services: published on this machine by
	// Docker, forwarded by envd elsewhere. SSH is one of them.
	Ports []Port
	// Secrets are files the agent finds in contract.RunDir: keys and its
	// config. They never go into the image, nor into the spec's digest.
	Secrets map[string][]byte `json:"-"`
	Env     map[string]string
	// GPUs: "" none, "all", or a count such as "2".
	GPUs    string
	CPUs    float64
	Memory  int64 // bytes; 0 = no limit
	ShmSize int64 // bytes; 0 = the runtime's default
	Labels  map[string]string
	// User the agent starts as (it drops to the dev user).
	User string
	// StartTimeout bounds how long a runtime that schedules and pulls
	// (Kubernetes) may take to start it; 0 is the runtime's default.
	StartTimeout time.Duration `json:"-"`
}

// Project is where the project directory is, here and inside.
type Project struct {
	HostDir string
	Path    string
}

// Mount binds a host path into the environment.
type Mount struct {
	Source, Target string
	ReadOnly       bool
}

// Port is a service port of the environment. HostPort 0 lets the runtime
// pick a free one; a runtime without published ports reports 0.
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
	// RestartCount is how often the runtime started it again by itself.
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
	// Kind names the runtime: "docker", "kubernetes".
	Kind() string
	// Delivery says how an image reaches it; Project how the project does.
	Delivery() Delivery
	Project() ProjectTransport
	// Start creates and starts the environment; on failure (ctx cancelled
	// included) nothing it created is left.
	Start(ctx context.Context, s Spec) (*Env, error)
	// Get returns the environment, or ErrNotFound.
	Get(ctx context.Context, name string) (*Env, error)
	List(ctx context.Context) ([]Env, error)
	// Remove stops (within a grace period) and removes the environment;
	// what holds the user's work in a copied project stays (see Destroyer).
	Remove(ctx context.Context, name string) error
	// Logs streams the environment's own output (the agent's).
	Logs(ctx context.Context, name string, follow bool, tail int) (io.ReadCloser, error)
	// Dial connects to a port inside the running environment.
	Dial(ctx context.Context, name string, port int) (net.Conn, error)
}

// Keeper is a runtime whose stopped environments keep their files and can
// be started again as they were (Docker's containers).
type Keeper interface {
	// Resume starts the stopped environment again, with s's secrets.
	Resume(ctx context.Context, s Spec) (*Env, error)
	// Stop stops it within the grace period, keeping it.
	Stop(ctx context.Context, name string) error
	// Changes lists the files it changed outside its mounts: what removing
	// it loses.
	Changes(ctx context.Context, name string) ([]Change, error)
	// Differs says why old cannot be resumed for s ("its image was
	// rebuilt"), or "" when it can.
	Differs(ctx context.Context, old *Env, s Spec) (string, error)
	// CopyOutHint and StartHint tell the user how to save files from a
	// kept environment and how to start it as it is.
	CopyOutHint(name string) string
	StartHint(name string) string
}

// Destroyer is a runtime that keeps the project after Remove (a copied
// project's volume); Destroy removes that too.
type Destroyer interface {
	Destroy(ctx context.Context, name string) error
}

// Synced records whether a copied project was copied in, so that a later
// up does not overwrite the work done inside.
type Synced interface {
	MarkSynced(ctx context.Context, name string) error
	Synced(ctx context.Context, name string) (bool, error)
}

// Change is one path an environment added, modified or deleted.
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

// NoGPURuntimeError: GPUs were asked for but Docker (or Podman) cannot
// provide them.
type NoGPURuntimeError struct {
	Podman bool
	Err    error
}

func (e *NoGPURuntimeError) Error() string {
	if e.Podman {
		return fmt.Sprintf("this environment asks for GPUs, but Podman has no NVIDIA GPUs to give: %v\n  hint: Podman gives GPUs through CDI: install nvidia-container-toolkit and run sudo nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml; or run without GPUs: envd up --no-gpu", e.Err)
	}
	return fmt.Sprintf("this environment asks for GPUs, but Docker has no NVIDIA runtime: %v\n  hint: install the NVIDIA driver and nvidia-container-toolkit (then restart Docker), or run without GPUs: envd up --no-gpu", e.Err)
}
