package cli

// Where the environment's services listen: inside its own network
// namespace on their own ports (the runtime publishes or forwards them),
// or, on a runtime whose environments share this machine's network
// (rootless Podman without slirp4netns), on the host ports envd chose.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"

	"envd.dev/envd/internal/runtime"
)

// listenFunc says where a service of the environment with containerPort
// listens: its IP address and port.
type listenFunc func(containerPort int) (ip string, port int)

func (l listenFunc) addr(containerPort int) string {
	ip, port := l(containerPort)
	return net.JoinHostPort(ip, strconv.Itoa(port))
}

// inContainer: on every address of the environment's own network.
func inContainer(port int) (string, int) { return "0.0.0.0", port }

// onHost: on the host address and port each was given.
func onHost(ports []runtime.Port) listenFunc {
	return func(containerPort int) (string, int) {
		for _, p := range ports {
			if p.ContainerPort == containerPort {
				return orLoopback(p.HostIP), p.HostPort
			}
		}
		return "127.0.0.1", containerPort
	}
}

func orLoopback(ip string) string {
	if ip == "" {
		return "127.0.0.1"
	}
	return ip
}

// hostNetworkPorts gives each port its place on this machine's network.
// A service of runtime.expose listens where it listens, on its own port
// (a host_port, if given, must be the same). envd's own (ssh, Jupyter) get
// the port they have in the environment of that name if it exists, so that
// up finds it unchanged, else the port asked for, else a free one.
func hostNetworkPorts(ctx context.Context, rt runtime.Runtime, name string, ports []runtime.Port) ([]runtime.Port, error) {
	had := map[int]int{}
	old, err := rt.Get(ctx, name)
	switch {
	case err == nil:
		for _, p := range old.Ports {
			had[p.ContainerPort] = p.HostPort
		}
	case !errors.Is(err, runtime.ErrNotFound):
		return nil, err
	}
	out := make([]runtime.Port, len(ports))
	for i, p := range ports {
		switch {
		case p.Name != "ssh" && p.Name != "jupyter":
			if p.HostPort != 0 && p.HostPort != p.ContainerPort {
				return nil, usageError{fmt.Errorf("runtime.expose(envd_port=%d, host_port=%d): this runtime's environments share this machine's network (rootless Podman without slirp4netns), so %s is reached on its own port %d\n  hint: drop host_port, or make it %d",
					p.ContainerPort, p.HostPort, p.Name, p.ContainerPort, p.ContainerPort)}
			}
			p.HostPort = p.ContainerPort
		case p.HostPort != 0:
		case had[p.ContainerPort] != 0:
			p.HostPort = had[p.ContainerPort]
		default:
			if p.HostPort, err = freePort(orLoopback(p.HostIP)); err != nil {
				return nil, fmt.Errorf("finding a free port for %s on %s: %w", p.Name, orLoopback(p.HostIP), err)
			}
		}
		out[i] = p
	}
	return out, nil
}

// freePort is a port nothing listens on at ip, now.
func freePort(ip string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
