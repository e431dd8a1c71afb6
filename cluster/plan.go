// Package cluster turns a Cluster config into node containers, kubeadm runs
// and a kubeconfig. Nothing here knows which runtime it talks to.
package cluster

import (
	"fmt"
	"regexp"
	"sort"

	"github.com/kinc-dev/kinc/cluster/config"
	"github.com/kinc-dev/kinc/cluster/kubeadm"
	"github.com/kinc-dev/kinc/lb"
	"github.com/kinc-dev/kinc/runtime"
)

// APIServerPort is the port the API server (and the load balancer in front
// of several) listens on inside its container.
const APIServerPort = 6443

// RoleLoadBalancer is the role label of the HA load balancer container.
const RoleLoadBalancer = "load-balancer"

// Plan is everything create makes for a config, resolved before any runtime
// is touched: what `create cluster --dry-run` prints.
type Plan struct {
	Name              string            `json:"name"`
	KubernetesVersion string            `json:"kubernetesVersion"`
	Nodes             []NodePlan        `json:"nodes"`
	LoadBalancer      *LoadBalancerPlan `json:"loadBalancer,omitempty"`
	// Cluster is the config the plan came from, after defaults.
	Cluster *config.Cluster `json:"-"`

	cgroupDriver string
}

// NodePlan is one node container.
type NodePlan struct {
	Name   string               `json:"name"`
	Role   config.NodeRole      `json:"role"`
	Image  string               `json:"image"`
	Ports  []config.PortMapping `json:"ports,omitempty"`
	Mounts []config.Mount       `json:"mounts,omitempty"`
	// Labels are the container's; NodeLabels the Kubernetes node's.
	Labels        map[string]string `json:"labels"`
	NodeLabels    map[string]string `json:"nodeLabels,omitempty"`
	KubeadmConfig string            `json:"kubeadmConfig"`
	// Config is the node as the user wrote it, after defaults.
	Config config.Node `json:"-"`
}

// LoadBalancerPlan is the container fronting several control planes.
type LoadBalancerPlan struct {
	Name   string               `json:"name"`
	Image  string               `json:"image"`
	Ports  []config.PortMapping `json:"ports"`
	Labels map[string]string    `json:"labels"`
	Config string               `json:"config"`
}

var versionTag = regexp.MustCompile(`:(v\d+\.\d+\.\d+)(@|$)`)

// KubernetesVersionOf guesses the Kubernetes version of a node image from its
// tag (kinc/node:v1.34.4, kindest/node:v1.31.0@sha256:...), for plans made
// without a runtime; create reads /kind/version from the node instead.
func KubernetesVersionOf(image, fallback string) string {
	if m := versionTag.FindStringSubmatch(image); m != nil {
		return m[1]
	}
	return fallback
}

// apiServerMapping is the host port the cluster's API is published on.
func apiServerMapping(c *config.Cluster) config.PortMapping {
	return config.PortMapping{
		ListenAddress: c.Networking.APIServerAddress,
		HostPort:      c.Networking.APIServerPort,
		ContainerPort: APIServerPort,
		Protocol:      config.PortProtocolTCP,
	}
}

// containerLabels are the labels that let get and delete find a container.
func containerLabels(cluster, role string) map[string]string {
	return map[string]string{runtime.LabelCluster: cluster, runtime.LabelRole: role}
}

// sortedKeys is used where maps must print in a stable order.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// PlanOption sets what a plan cannot learn from the config alone; create
// learns it from the runtime and the node image.
type PlanOption func(*planOptions) error

type planOptions struct {
	kubernetesVersion string
	cgroupDriver      string
	rootless          bool
	token             string
	certificateKey    string
	addresses         map[string]Addresses
}

// WithKubernetesVersion is the node image's version (its /kind/version).
func WithKubernetesVersion(v string) PlanOption {
	return func(o *planOptions) error { o.kubernetesVersion = v; return nil }
}

// WithHost sets the nodes' cgroup driver and rootless mode from the
// runtime's Info.
func WithHost(info runtime.Info) PlanOption {
	return func(o *planOptions) error {
		o.cgroupDriver = NodeCgroupDriver(info)
		o.rootless = info.Rootless
		return nil
	}
}

// NodeCgroupDriver is the cgroup driver of kubelet and containerd inside a
// node. On cgroup v2 the node's systemd owns its (namespaced, delegated)
// hierarchy and manages it; on a cgroup v1 host the node's systemd cannot
// own the v1 controllers, so cgroupfs is what works (seen on hybrid hosts).
// The host runtime's own driver does not matter: the node is its own host.
func NodeCgroupDriver(info runtime.Info) string {
	if info.CgroupVersion == 2 {
		return "systemd"
	}
	return "cgroupfs"
}

// WithJoinSecrets sets the bootstrap token and the certificate key that
// control planes join with.
func WithJoinSecrets(token, certificateKey string) PlanOption {
	return func(o *planOptions) error { o.token, o.certificateKey = token, certificateKey; return nil }
}

// WithAddresses gives each node's address on the cluster network, by
// container name. Without it (a dry run) nodes are known by name only.
func WithAddresses(addrs map[string]Addresses) PlanOption {
	return func(o *planOptions) error { o.addresses = addrs; return nil }
}

// Placeholders a dry run prints where create puts generated secrets.
const (
	dryRunToken          = "abcdef.0123456789abcdef"
	dryRunCertificateKey = "0000000000000000000000000000000000000000000000000000000000000000"
)

// NewPlan resolves a defaulted, validated config into containers and
// kubeadm configs. fallbackVersion is used when the node image's tag does
// not say its Kubernetes version and no WithKubernetesVersion is given.
func NewPlan(c *config.Cluster, fallbackVersion string, opts ...PlanOption) (*Plan, error) {
	o := planOptions{cgroupDriver: "cgroupfs", token: dryRunToken, certificateKey: dryRunCertificateKey}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	names := config.NodeNames(c)
	if len(names) != len(c.Nodes) || len(c.Nodes) == 0 {
		return nil, fmt.Errorf("planning cluster %q: %d node names for %d nodes", c.Name, len(names), len(c.Nodes))
	}
	version := o.kubernetesVersion
	if version == "" {
		version = KubernetesVersionOf(c.Nodes[0].Image, fallbackVersion)
	}
	p := &Plan{Name: c.Name, KubernetesVersion: version, Cluster: c, cgroupDriver: o.cgroupDriver}

	controlPlanes := c.ControlPlanes()
	first := -1 // the control plane that runs kubeadm init
	for i, n := range c.Nodes {
		if n.Role == config.ControlPlaneRole {
			first = i
			break
		}
	}
	if first < 0 {
		return nil, fmt.Errorf("planning cluster %q: no control-plane node", c.Name)
	}
	endpoint := names[first]
	if len(controlPlanes) > 1 {
		endpoint = config.LoadBalancerName(c)
	}
	endpoint = fmt.Sprintf("%s:%d", endpoint, APIServerPort)

	for i, n := range c.Nodes {
		np := NodePlan{
			Name:       names[i],
			Role:       n.Role,
			Image:      n.Image,
			Ports:      n.ExtraPortMappings,
			Mounts:     n.ExtraMounts,
			Labels:     containerLabels(c.Name, string(n.Role)),
			NodeLabels: n.Labels,
			Config:     n,
		}
		// The API is published on the first control plane, or on the load
		// balancer when there are several.
		if i == first && len(controlPlanes) == 1 {
			np.Ports = append([]config.PortMapping{apiServerMapping(c)}, np.Ports...)
		}
		res, err := kubeadm.Config(kubeadm.NodeInput{
			Cluster:              c,
			Node:                 n,
			NodeName:             np.Name,
			NodeIP:               nodeIP(c.Networking.IPFamily, o.addresses, np.Name, i),
			ControlPlaneEndpoint: endpoint,
			KubernetesVersion:    version,
			CgroupDriver:         o.cgroupDriver,
			Rootless:             o.rootless,
			Token:                o.token,
			CertificateKey:       o.certificateKey,
			FirstControlPlane:    i == first,
			UntaintControlPlane:  len(c.Workers()) == 0,
		})
		if err != nil {
			return nil, err
		}
		np.KubeadmConfig = res.YAML
		p.Nodes = append(p.Nodes, np)
	}
	if len(controlPlanes) > 1 {
		lbp, err := planLoadBalancer(c, p.Nodes, o.addresses)
		if err != nil {
			return nil, err
		}
		p.LoadBalancer = lbp
	}
	return p, nil
}

// nodeIP is the node's kubelet address, or in a dry run (no addresses
// yet) placeholders from the documentation ranges 192.0.2.0/24 (RFC 5737)
// and 2001:db8::/32 (RFC 3849), which no real network uses.
func nodeIP(f config.IPFamily, addrs map[string]Addresses, name string, i int) string {
	a, ok := addrs[name]
	if !ok {
		a = Addresses{IPv4: fmt.Sprintf("192.0.2.%d", i+2), IPv6: fmt.Sprintf("2001:db8::%d", i+2)}
	}
	return a.NodeIP(f)
}

// planLoadBalancer plans the container that fronts several control planes.
// It runs from the node image (which carries haproxy) and is the only one
// publishing the API port on the host.
func planLoadBalancer(c *config.Cluster, nodes []NodePlan, addresses map[string]Addresses) (*LoadBalancerPlan, error) {
	var backends []lb.Backend
	for _, n := range nodes {
		if n.Role != config.ControlPlaneRole {
			continue
		}
		addr := addresses[n.Name].Primary(c.Networking.IPFamily)
		if addr == "" {
			addr = n.Name // a dry run: addresses are known once nodes exist
		}
		backends = append(backends, lb.Backend{Name: n.Name, Address: addr, Port: APIServerPort})
	}
	cfg, err := lb.Config(lb.Input{BindPort: APIServerPort, IPFamily: c.Networking.IPFamily, Backends: backends})
	if err != nil {
		return nil, fmt.Errorf("planning the load balancer of cluster %q: %w", c.Name, err)
	}
	return &LoadBalancerPlan{
		Name:   config.LoadBalancerName(c),
		Image:  nodes[0].Image,
		Ports:  []config.PortMapping{apiServerMapping(c)},
		Labels: containerLabels(c.Name, RoleLoadBalancer),
		Config: cfg,
	}, nil
}
