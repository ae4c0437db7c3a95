package runtime

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"envd.dev/envd/internal/contract"
)

// Podman runs environments as containers of the user's Podman, through its
// Docker-compatible API: the Docker runtime, with what Podman does
// differently.
//   - Rootless, the container gets a user namespace in which the host user
//     is the dev user (keep-id:uid=1000,gid=1000, as on Kubernetes the dev
//     user keeps the image's UID): the bind-mounted project is the dev
//     user's inside and stays the host user's outside.
//   - Where Podman cannot publish ports (rootless, and slirp4netns cannot
//     open /dev/net/tun), the container shares the host's network: envd
//     chooses the ports before it starts (the services listen on them on
//     127.0.0.1), and the container's label LabelPorts says which.
//   - GPUs come through CDI (nvidia.com/gpu=...), not Docker's device
//     requests.
type Podman struct {
	*Docker
}

// podmanMode is what a Docker needs to know when it is a Podman.
type podmanMode struct {
	keepID      bool
	hostNetwork bool
	// cdiGPUs: a CDI specification of NVIDIA GPUs exists.
	cdiGPUs bool
}

var (
	_ Runtime     = (*Podman)(nil)
	_ Keeper      = (*Podman)(nil)
	_ HostNetwork = (*Podman)(nil)
)

// HostNetwork is a runtime whose environments share this machine's
// network: nothing is published, so the ports are chosen before the
// environment is made, and its services listen on them directly.
type HostNetwork interface {
	SharesHostNetwork() bool
}

// PodmanOptions say what the user's Podman is.
type PodmanOptions struct {
	// Rootless: the engine runs as the user (keep-id gives them the project).
	Rootless bool
	// HostNetwork: it cannot publish ports.
	HostNetwork bool
	// CDIGPUs: it can give NVIDIA GPUs through CDI.
	CDIGPUs bool
}

// NewPodman wraps a client of the Podman service; stateRoot as for Docker.
func NewPodman(api *client.Client, stateRoot string, o PodmanOptions) *Podman {
	return &Podman{&Docker{api: api, stateRoot: stateRoot, podman: &podmanMode{keepID: o.Rootless, hostNetwork: o.HostNetwork, cdiGPUs: o.CDIGPUs}}}
}

func (p *Podman) Kind() string { return "podman" }

// SharesHostNetwork: the environment's services listen on this machine.
func (p *Podman) SharesHostNetwork() bool { return p.podman.hostNetwork }

// MapsHostUser: the host user is the dev user (UID 1000) inside, so the
// image keeps its own dev UID.
func (p *Podman) MapsHostUser() bool { return p.podman.keepID }

func (p *Podman) CopyOutHint(name string) string {
	return "podman cp " + ContainerName(name) + ":PATH ."
}

func (p *Podman) StartHint(name string) string {
	return "podman start " + ContainerName(name)
}

// keepIDMode maps the host user to the dev user; the rest of the
// container's IDs come from the user's subordinate range.
var keepIDMode = container.UsernsMode(fmt.Sprintf("keep-id:uid=%d,gid=%d", contract.DevUID, contract.DevUID))

// adapt turns Docker's create options into Podman's.
func (m *podmanMode) adapt(opts *client.ContainerCreateOptions, s Spec) error {
	host := opts.HostConfig
	if m.keepID {
		host.UsernsMode = keepIDMode
	}
	if m.hostNetwork {
		// s's ports are pinned: the services listen on their host ports.
		ports, err := json.Marshal(s.Ports)
		if err != nil {
			return err
		}
		host.NetworkMode = network.NetworkHost
		host.PortBindings, opts.Config.ExposedPorts = nil, nil
		opts.Config.Labels[contract.LabelPorts] = string(ports)
	}
	if s.GPUs != "" {
		if !m.cdiGPUs {
			return &NoGPURuntimeError{Podman: true, Err: fmt.Errorf("no CDI specification of NVIDIA GPUs in /etc/cdi or /var/run/cdi")}
		}
		host.DeviceRequests = nil
		devices := []string{"nvidia.com/gpu=all"}
		if s.GPUs != "all" {
			n, _ := strconv.Atoi(s.GPUs) // checked by containerConfig
			devices = devices[:0]
			for i := range n {
				devices = append(devices, "nvidia.com/gpu="+strconv.Itoa(i))
			}
		}
		for _, d := range devices {
			host.Devices = append(host.Devices, container.DeviceMapping{PathOnHost: d, PathInContainer: d, CgroupPermissions: "rwm"})
		}
	}
	return nil
}

// labelledPorts are the ports a host-network container's label lists.
func labelledPorts(labels map[string]string) []Port {
	var ports []Port
	if json.Unmarshal([]byte(labels[contract.LabelPorts]), &ports) != nil {
		return nil
	}
	return ports
}

// imageName is the image as envd named it: Podman reports a short name
// such as proj:dev as docker.io/library/proj:dev.
func (d *Docker) imageName(image string) string {
	if d.podman != nil {
		return strings.TrimPrefix(image, "docker.io/library/")
	}
	return image
}
