// Package runtime is the small contract every container backend (podman,
// docker, containerd) fulfils so that cluster/ never knows which one it talks
// to. Backends translate calls to their own API and map their errors, once,
// to the sentinels in errors.go; anything two backends would do alike lives
// here or in cluster/, not in a backend.
package runtime

import (
	"context"
	"io"
)

// Runtime is what kinc needs from a container engine to run nodes.
type Runtime interface {
	// Info describes the backend and the host as the backend sees it.
	Info(ctx context.Context) (Info, error)
	Networks
	Containers
	Images
	// Close releases the connection to the daemon.
	Close() error
}

// Networks manages the bridge networks nodes live on.
type Networks interface {
	// EnsureNetwork creates the network or returns the existing one of the
	// same name unchanged.
	EnsureNetwork(ctx context.Context, spec NetworkSpec) (Network, error)
	// DeleteNetwork removes a network; ErrNotFound when it does not exist.
	DeleteNetwork(ctx context.Context, name string) error
}

// Containers manages node containers (and the load balancer, which is a
// container like any other).
type Containers interface {
	// CreateNode creates and starts a container; ErrAlreadyExists on a
	// name clash.
	CreateNode(ctx context.Context, spec NodeSpec) (NodeStatus, error)
	StartNode(ctx context.Context, name string) error
	StopNode(ctx context.Context, name string) error
	// SetCPUShares weighs a running node's CPU time against other
	// containers', in cgroup v1 cpu.shares (1024 is every container's
	// default; on cgroup v2 the OCI runtime turns them into cpu.weight).
	SetCPUShares(ctx context.Context, name string, shares uint64) error
	// DeleteNode force-removes the container and the volumes it owns.
	DeleteNode(ctx context.Context, name string) error
	// InspectNode reports state, addresses and published ports.
	InspectNode(ctx context.Context, name string) (NodeStatus, error)
	// ListNodes returns the containers carrying every given label.
	ListNodes(ctx context.Context, labels map[string]string) ([]NodeStatus, error)
	// Exec runs a command; a non-zero exit is an *ExitError.
	Exec(ctx context.Context, name string, cmd ExecSpec) error
	// CopyTo extracts a tar stream into dir inside the container; dir must
	// exist and must not be on a tmpfs (/run, /tmp): docker writes beneath
	// such mounts, where the container does not see the files.
	CopyTo(ctx context.Context, name, dir string, tar io.Reader) error
	// CopyFrom returns path inside the container as a tar stream.
	CopyFrom(ctx context.Context, name, path string) (io.ReadCloser, error)
	// Logs writes the container's output (stdout and stderr) to w.
	Logs(ctx context.Context, name string, w io.Writer) error
}

// Images manages the images nodes run from.
type Images interface {
	ImageExists(ctx context.Context, ref string) (bool, error)
	// LoadImage loads a docker-archive or oci-archive and returns the
	// references it named.
	LoadImage(ctx context.Context, archive io.Reader) ([]string, error)
	// SaveImages writes the images as one docker-archive to w.
	SaveImages(ctx context.Context, refs []string, w io.Writer) error
}

// Info is what a backend tells about itself and the host. Differences
// between backends are expressed here, as data, not as code in cluster/.
type Info struct {
	Name          string // "podman", "docker" or "containerd"
	Version       string
	Socket        string
	Rootless      bool
	CgroupVersion int    // 1 or 2
	CgroupDriver  string // "cgroupfs" or "systemd"
	MemoryLimit   bool
	PidsLimit     bool
	CPUShares     bool
}

// NetworkSpec asks for a bridge network.
type NetworkSpec struct {
	Name   string
	Labels map[string]string
	// Subnet (CIDR) is chosen by the backend when empty.
	Subnet string
	// IPv6 adds an IPv6 subnet (SubnetV6, or one chosen by the backend).
	IPv6     bool
	SubnetV6 string
}

// Network is a network as it exists.
type Network struct {
	Name     string
	Subnet   string
	Gateway  string
	SubnetV6 string
}

// NodeSpec asks for a privileged container running systemd as PID 1 in its
// own cgroup namespace, with tmpfs on /run and /tmp and a volume on /var that
// is deleted with it.
type NodeSpec struct {
	Name     string
	Image    string
	Hostname string
	Labels   map[string]string
	Env      map[string]string
	Network  string
	Aliases  []string
	// IP and IPv6 fix the node's addresses on Network (empty: any).
	IP     string
	IPv6   string
	Mounts []Mount
	Ports  []PortMapping
	// Command overrides the image's entrypoint arguments when set.
	Command []string
}

// Propagation of a bind mount.
type Propagation string

const (
	PropagationNone            Propagation = ""
	PropagationHostToContainer Propagation = "rslave"
	PropagationBidirectional   Propagation = "rshared"
)

// Mount is a bind mount from the host.
type Mount struct {
	HostPath       string
	ContainerPath  string
	ReadOnly       bool
	SELinuxRelabel bool
	Propagation    Propagation
}

// PortMapping publishes a container port on the host. HostPort 0 asks for
// a free port; the chosen one is reported in NodeStatus.Ports.
type PortMapping struct {
	ListenAddress string // default 127.0.0.1 is decided by cluster/, not here
	HostPort      int
	ContainerPort int
	Protocol      string // "tcp" (default), "udp" or "sctp"
}

// State of a container.
type State string

const (
	StateCreated State = "created"
	StateRunning State = "running"
	StateStopped State = "stopped"
	StateUnknown State = "unknown"
)

// NodeStatus is a container as it exists.
type NodeStatus struct {
	Name   string
	ID     string
	Image  string
	State  State
	Labels map[string]string
	IPv4   string
	IPv6   string
	Ports  []PortMapping
}

// ExecSpec is a command to run inside a container.
type ExecSpec struct {
	Cmd    []string
	Env    map[string]string
	User   string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}
