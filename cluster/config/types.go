// Package config is the Cluster API users write for kind: v1alpha4 (and the
// older v1alpha3 and v1alpha2 forms, converted on load), its defaults and
// its validation. Cluster is the one internal form every other package uses.
package config

// Cluster is a whole cluster as the user asked for it, after conversion
// and defaults.
type Cluster struct {
	Name       string     `json:"name,omitempty"`
	Nodes      []Node     `json:"nodes,omitempty"`
	Networking Networking `json:"networking,omitempty"`

	FeatureGates  map[string]bool   `json:"featureGates,omitempty"`
	RuntimeConfig map[string]string `json:"runtimeConfig,omitempty"`

	KubeadmConfigPatches            []string        `json:"kubeadmConfigPatches,omitempty"`
	KubeadmConfigPatchesJSON6902    []PatchJSON6902 `json:"kubeadmConfigPatchesJSON6902,omitempty"`
	ContainerdConfigPatches         []string        `json:"containerdConfigPatches,omitempty"`
	ContainerdConfigPatchesJSON6902 []string        `json:"containerdConfigPatchesJSON6902,omitempty"`
}

// NodeRole is what a node does in the cluster.
type NodeRole string

const (
	ControlPlaneRole NodeRole = "control-plane"
	WorkerRole       NodeRole = "worker"
)

// Node is one node container.
type Node struct {
	Role              NodeRole          `json:"role,omitempty"`
	Image             string            `json:"image,omitempty"`
	Labels            map[string]string `json:"labels,omitempty"`
	ExtraMounts       []Mount           `json:"extraMounts,omitempty"`
	ExtraPortMappings []PortMapping     `json:"extraPortMappings,omitempty"`

	KubeadmConfigPatches         []string        `json:"kubeadmConfigPatches,omitempty"`
	KubeadmConfigPatchesJSON6902 []PatchJSON6902 `json:"kubeadmConfigPatchesJSON6902,omitempty"`
}

// MountPropagation as kind spells it.
type MountPropagation string

const (
	MountPropagationNone            MountPropagation = "None"
	MountPropagationHostToContainer MountPropagation = "HostToContainer"
	MountPropagationBidirectional   MountPropagation = "Bidirectional"
)

// Mount is a host path mounted into a node.
type Mount struct {
	ContainerPath  string           `json:"containerPath,omitempty"`
	HostPath       string           `json:"hostPath,omitempty"`
	ReadOnly       bool             `json:"readOnly,omitempty"`
	SelinuxRelabel bool             `json:"selinuxRelabel,omitempty"`
	Propagation    MountPropagation `json:"propagation,omitempty"`
}

// PortProtocol as kind spells it.
type PortProtocol string

const (
	PortProtocolTCP  PortProtocol = "TCP"
	PortProtocolUDP  PortProtocol = "UDP"
	PortProtocolSCTP PortProtocol = "SCTP"
)

// PortMapping publishes a node port on the host. HostPort 0 picks a free
// one at create time (kind's -1 is read as 0). After defaults, Protocol is
// TCP and ListenAddress 0.0.0.0, whatever the cluster's IP family.
type PortMapping struct {
	ContainerPort int32        `json:"containerPort,omitempty"`
	HostPort      int32        `json:"hostPort,omitempty"`
	ListenAddress string       `json:"listenAddress,omitempty"`
	Protocol      PortProtocol `json:"protocol,omitempty"`
}

// IPFamily of the cluster.
type IPFamily string

const (
	IPv4Family IPFamily = "ipv4"
	IPv6Family IPFamily = "ipv6"
	DualStack  IPFamily = "dual"
)

// ProxyMode of kube-proxy; "none" runs no kube-proxy.
type ProxyMode string

const (
	IPTablesProxyMode ProxyMode = "iptables"
	NFTablesProxyMode ProxyMode = "nftables"
	IPVSProxyMode     ProxyMode = "ipvs"
	NoneProxyMode     ProxyMode = "none"
)

// Networking of the cluster. After defaults every field but APIServerPort,
// DisableDefaultCNI and DNSSearch is set. APIServerPort 0 means "pick a
// free port at create time" (kind's -1 is read as 0); subnets are one CIDR,
// or a v4 and a v6 one comma-separated for dual stack. DNSSearch nil
// inherits the host's search domains; an empty list sets none.
type Networking struct {
	IPFamily          IPFamily  `json:"ipFamily,omitempty"`
	APIServerAddress  string    `json:"apiServerAddress,omitempty"`
	APIServerPort     int32     `json:"apiServerPort,omitempty"`
	PodSubnet         string    `json:"podSubnet,omitempty"`
	ServiceSubnet     string    `json:"serviceSubnet,omitempty"`
	DisableDefaultCNI bool      `json:"disableDefaultCNI,omitempty"`
	KubeProxyMode     ProxyMode `json:"kubeProxyMode,omitempty"`
	DNSSearch         *[]string `json:"dnsSearch,omitempty"`
}

// PatchJSON6902 is an RFC 6902 patch for the kubeadm documents of one
// group, version and kind.
type PatchJSON6902 struct {
	Group   string `json:"group,omitempty"`
	Version string `json:"version,omitempty"`
	Kind    string `json:"kind,omitempty"`
	Patch   string `json:"patch,omitempty"`
}
