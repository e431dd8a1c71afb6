package config

// Default networking, as kind has it.
const (
	DefaultPodSubnetV4     = "10.244.0.0/16"
	DefaultPodSubnetV6     = "fd00:10:244::/56"
	DefaultServiceSubnetV4 = "10.96.0.0/16"
	DefaultServiceSubnetV6 = "fd00:10:96::/112"
)

// SetDefaults fills what the user left out. A Cluster from Load or Parse
// already has its defaults; this is for Clusters built in code. Name:
// WithName, else the config's name, else KINC_CLUSTER_NAME from WithEnv,
// else "kinc". Networking.APIServerPort stays 0, which means "pick a free
// port at create time": the port is chosen when the cluster is made.
func SetDefaults(c *Cluster, opts ...Option) error {
	o, err := newOptions(opts)
	if err != nil {
		return err
	}
	setDefaults(c, o)
	return nil
}

func setDefaults(c *Cluster, o *options) {
	c.Name = clusterName(c.Name, o)
	if len(c.Nodes) == 0 {
		c.Nodes = []Node{{Role: ControlPlaneRole}}
	}
	defaultNetworking(&c.Networking)
	for i := range c.Nodes {
		defaultNode(&c.Nodes[i], o)
	}
}

func clusterName(fromConfig string, o *options) string {
	switch {
	case o.name != "":
		return o.name
	case fromConfig != "":
		return fromConfig
	case o.getenv != nil && o.getenv(EnvClusterName) != "":
		return o.getenv(EnvClusterName)
	}
	return DefaultClusterName
}

func defaultNetworking(n *Networking) {
	if n.IPFamily == "" {
		n.IPFamily = IPv4Family
	}
	if n.APIServerAddress == "" {
		// IPv4 loopback for every family: node containers always have an
		// IPv4 address too, and runtimes that publish ports with iptables
		// DNAT (podman, containerd's CNI portmap) cannot forward from ::1.
		n.APIServerAddress = "127.0.0.1"
	}
	if n.PodSubnet == "" {
		n.PodSubnet = byFamily(n.IPFamily, DefaultPodSubnetV4, DefaultPodSubnetV6)
	}
	if n.ServiceSubnet == "" {
		n.ServiceSubnet = byFamily(n.IPFamily, DefaultServiceSubnetV4, DefaultServiceSubnetV6)
	}
	if n.KubeProxyMode == "" {
		n.KubeProxyMode = IPTablesProxyMode
	}
	if n.APIServerPort == -1 {
		n.APIServerPort = 0 // kind's "the runtime picks": a free port all the same
	}
}

// byFamily picks the v4 or v6 value, or both comma-separated for dual
// stack. An unknown family gets v4; validation reports the family.
func byFamily(f IPFamily, v4, v6 string) string {
	switch f {
	case IPv6Family:
		return v6
	case DualStack:
		return v4 + "," + v6
	}
	return v4
}

func defaultNode(n *Node, o *options) {
	if n.Role == "" {
		n.Role = ControlPlaneRole
	}
	switch {
	case o.image != "":
		n.Image = o.image
	case n.Image == "":
		n.Image = o.defaultImage
	}
	for i := range n.ExtraMounts {
		if n.ExtraMounts[i].Propagation == "" {
			n.ExtraMounts[i].Propagation = MountPropagationNone
		}
	}
	for i := range n.ExtraPortMappings {
		pm := &n.ExtraPortMappings[i]
		if pm.HostPort == -1 {
			pm.HostPort = 0 // as for the API server port
		}
		if pm.Protocol == "" {
			pm.Protocol = PortProtocolTCP
		}
		if pm.ListenAddress == "" {
			pm.ListenAddress = "0.0.0.0" // for every family, as apiServerAddress
		}
	}
}
