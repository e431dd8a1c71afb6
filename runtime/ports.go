package runtime

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
)

// DefaultProtocol is a port mapping's protocol when none is given.
const DefaultProtocol = "tcp"

// ResolvePorts returns ports with a free host port in place of every 0 and a
// protocol everywhere. Backends pick ports themselves rather than let the
// daemon do it, because docker gives a new random port on every restart and
// a cluster's kubeconfig must keep working.
func ResolvePorts(ports []PortMapping) ([]PortMapping, error) {
	out := make([]PortMapping, len(ports))
	for i, p := range ports {
		if p.Protocol == "" {
			p.Protocol = DefaultProtocol
		}
		if p.HostPort == 0 {
			port, err := FreePort(p.ListenAddress, p.Protocol)
			if err != nil {
				return nil, err
			}
			p.HostPort = port
		}
		out[i] = p
	}
	return out, nil
}

// FreePort asks the kernel for a port free on address (all addresses when
// empty) by binding port 0 and releasing it at once. Another process may
// still take it before the container does; that race is accepted.
func FreePort(address, protocol string) (int, error) {
	hostPort := net.JoinHostPort(address, "0")
	switch protocol {
	case "", "tcp", "sctp": // sctp: a free TCP port is a good guess
		l, err := net.Listen("tcp", hostPort)
		if err != nil {
			return 0, fmt.Errorf("finding a free port on %q: %w", address, err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port, nil
	case "udp":
		c, err := net.ListenPacket("udp", hostPort)
		if err != nil {
			return 0, fmt.Errorf("finding a free udp port on %q: %w", address, err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port, nil
	default:
		return 0, fmt.Errorf("finding a free port: protocol %q: %w", protocol, ErrInvalid)
	}
}

// PortKey is the "PORT/PROTO" form docker and podman use for container ports.
func PortKey(port int, protocol string) string {
	if protocol == "" {
		protocol = DefaultProtocol
	}
	return strconv.Itoa(port) + "/" + protocol
}

// ParsePortBinding reads one published port as podman and docker inspect
// report it: key "6443/tcp", host IP and host port as strings.
func ParsePortBinding(key, hostIP, hostPort string) (PortMapping, error) {
	port, proto, _ := strings.Cut(key, "/")
	if proto == "" {
		proto = DefaultProtocol
	}
	cp, err := strconv.Atoi(port)
	if err != nil {
		return PortMapping{}, fmt.Errorf("parsing container port %q: %w", key, err)
	}
	hp, err := strconv.Atoi(hostPort)
	if err != nil {
		return PortMapping{}, fmt.Errorf("parsing host port %q of %q: %w", hostPort, key, err)
	}
	return PortMapping{ListenAddress: hostIP, HostPort: hp, ContainerPort: cp, Protocol: proto}, nil
}

// SortPorts orders mappings by container port, protocol, then host port, so
// that inspect results compare stably.
func SortPorts(ports []PortMapping) {
	sort.Slice(ports, func(i, j int) bool {
		a, b := ports[i], ports[j]
		if a.ContainerPort != b.ContainerPort {
			return a.ContainerPort < b.ContainerPort
		}
		if a.Protocol != b.Protocol {
			return a.Protocol < b.Protocol
		}
		if a.HostPort != b.HostPort {
			return a.HostPort < b.HostPort
		}
		return a.ListenAddress < b.ListenAddress
	})
}
