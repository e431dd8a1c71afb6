package runtime

import (
	"fmt"
	"os"
	"sort"
	"strings"
)

// Settings every backend applies to a node container, kept here once so that
// nodes look the same on podman, docker and containerd.
const (
	// StopSignal makes systemd (PID 1) shut down cleanly.
	StopSignal = "SIGRTMIN+3"
	// VarPath gets a volume: an overlay whose upper dir is on the container's
	// own overlay root fails, and containerd in the node needs one for
	// /var/lib/containerd.
	VarPath = "/var"
	// ContainerEnv is the variable systemd reads to know it runs in a
	// container; its value is the runtime's name.
	ContainerEnv = "container"
)

// NodeTmpfs are the paths mounted as tmpfs in a node, as systemd expects.
var NodeTmpfs = []string{"/run", "/tmp"}

// VolumeName is the name of the volume holding a node's /var.
func VolumeName(node string) string { return node + "-var" }

// NodeEnv returns the node's environment: the spec's variables plus
// container=runtimeName unless the spec sets it, as "K=V" sorted by key.
func NodeEnv(spec NodeSpec, runtimeName string) []string {
	env := map[string]string{ContainerEnv: runtimeName}
	for k, v := range spec.Env {
		env[k] = v
	}
	return EnvList(env)
}

// EnvList turns a map into "K=V" strings sorted by key.
func EnvList(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// modulesDir is a variable so tests can point it elsewhere.
var modulesDir = "/lib/modules"

// NodeMounts returns the spec's bind mounts plus the host's kernel modules,
// read-only, when the host has them (kube-proxy and some CNIs look there;
// many hosts, this CI VM included, have none).
func NodeMounts(spec NodeSpec) []Mount {
	mounts := append([]Mount(nil), spec.Mounts...)
	if fi, err := os.Stat(modulesDir); err == nil && fi.IsDir() {
		for _, m := range mounts {
			if m.ContainerPath == "/lib/modules" {
				return mounts
			}
		}
		mounts = append(mounts, Mount{HostPath: modulesDir, ContainerPath: "/lib/modules", ReadOnly: true})
	}
	return mounts
}

// MountOptions returns a bind mount's options in the vocabulary podman and
// docker share ("ro", "rslave", "z").
func MountOptions(m Mount) []string {
	var opts []string
	if m.ReadOnly {
		opts = append(opts, "ro")
	}
	if m.Propagation != PropagationNone {
		opts = append(opts, string(m.Propagation))
	}
	if m.SELinuxRelabel {
		opts = append(opts, "z")
	}
	return opts
}

// PrepareNode validates spec and picks its free host ports: what a backend
// does first in CreateNode, before it calls its daemon.
func PrepareNode(spec NodeSpec) ([]PortMapping, error) {
	if err := ValidateNodeSpec(spec); err != nil {
		return nil, err
	}
	return ResolvePorts(spec.Ports)
}

// ValidateNodeSpec checks what every backend needs before it calls its daemon.
func ValidateNodeSpec(spec NodeSpec) error {
	var problems []string
	if spec.Name == "" {
		problems = append(problems, "no name")
	}
	if spec.Image == "" {
		problems = append(problems, "no image")
	}
	if (spec.IP != "" || spec.IPv6 != "" || len(spec.Aliases) > 0) && spec.Network == "" {
		problems = append(problems, "IP or aliases without a network")
	}
	for _, m := range spec.Mounts {
		if m.HostPath == "" || !strings.HasPrefix(m.ContainerPath, "/") {
			problems = append(problems, fmt.Sprintf("mount %q:%q needs a host path and an absolute container path", m.HostPath, m.ContainerPath))
		}
	}
	for _, p := range spec.Ports {
		if p.ContainerPort <= 0 || p.ContainerPort > 65535 || p.HostPort < 0 || p.HostPort > 65535 {
			problems = append(problems, fmt.Sprintf("port %d:%d out of range", p.HostPort, p.ContainerPort))
		}
		switch p.Protocol {
		case "", "tcp", "udp", "sctp":
		default:
			problems = append(problems, fmt.Sprintf("port %d: unknown protocol %q", p.ContainerPort, p.Protocol))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("node %q: %s: %w", spec.Name, strings.Join(problems, "; "), ErrInvalid)
	}
	return nil
}

// ParseState maps the state words of podman and docker ("exited",
// "configured", ...) to State.
func ParseState(s string) State {
	switch strings.ToLower(s) {
	case "created", "configured", "initialized":
		return StateCreated
	case "running", "paused", "restarting":
		return StateRunning
	case "exited", "stopped", "dead", "stopping", "removing":
		return StateStopped
	default:
		return StateUnknown
	}
}
