package config

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
)

// MaxNameLength keeps every container name made from the cluster name,
// the longest being NAME-external-load-balancer, within 63 characters.
const MaxNameLength = 63 - len("-external-load-balancer")

var nameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// Validate checks a defaulted Cluster built in code; Load and Parse
// validate already, with lines. Each problem is an *Error; they are joined.
func Validate(c *Cluster) error {
	return validate(c, newSource(""))
}

func validate(c *Cluster, src *source) error {
	v := &validator{src: src}
	v.name(c.Name)
	v.nodes(c.Nodes)
	v.networking(&c.Networking)
	v.hostPorts(c)
	v.clusterPatches(c)
	return errors.Join(v.errs...)
}

type validator struct {
	src  *source
	errs []error
}

func (v *validator) errorf(path, format string, args ...any) {
	v.errs = append(v.errs, v.src.errorf(path, format, args...))
}

func (v *validator) name(name string) {
	if len(name) > MaxNameLength || !nameRE.MatchString(name) {
		v.errorf("name", "%q is not a valid cluster name: use at most %d lowercase letters, digits and '-', starting and ending with a letter or digit (it prefixes node names such as %s-external-load-balancer)", name, MaxNameLength, name)
	}
}

func (v *validator) nodes(nodes []Node) {
	controlPlanes := 0
	for i, n := range nodes {
		path := indexPath("nodes", i)
		switch n.Role {
		case ControlPlaneRole:
			controlPlanes++
		case WorkerRole:
		default:
			v.errorf(path+".role", "unknown role %q; use %q or %q", n.Role, ControlPlaneRole, WorkerRole)
		}
		for j, m := range n.ExtraMounts {
			v.mount(m, indexPath(path+".extraMounts", j))
		}
		for j, pm := range n.ExtraPortMappings {
			v.portMapping(pm, indexPath(path+".extraPortMappings", j))
		}
		v.kubeadmPatches(path, n.KubeadmConfigPatches, n.KubeadmConfigPatchesJSON6902)
	}
	if controlPlanes == 0 {
		v.errorf("nodes", "no control-plane node; add a node with role: control-plane")
	}
}

func (v *validator) mount(m Mount, path string) {
	if m.HostPath == "" {
		v.errorf(path+".hostPath", "missing; set the host path to mount")
	}
	if !strings.HasPrefix(m.ContainerPath, "/") {
		v.errorf(path+".containerPath", "%q is not an absolute path; set the absolute path inside the node", m.ContainerPath)
	}
	switch m.Propagation {
	case MountPropagationNone, MountPropagationHostToContainer, MountPropagationBidirectional:
	default:
		v.errorf(path+".propagation", "unknown propagation %q; use %s, %s or %s", m.Propagation,
			MountPropagationNone, MountPropagationHostToContainer, MountPropagationBidirectional)
	}
}

func (v *validator) portMapping(pm PortMapping, path string) {
	if pm.ContainerPort < 1 || pm.ContainerPort > 65535 {
		v.errorf(path+".containerPort", "%d is out of range; use a port from 1 to 65535", pm.ContainerPort)
	}
	if pm.HostPort < 0 || pm.HostPort > 65535 {
		v.errorf(path+".hostPort", "%d is out of range; use a port from 1 to 65535, or 0 for a free one", pm.HostPort)
	}
	if _, err := netip.ParseAddr(pm.ListenAddress); err != nil {
		v.errorf(path+".listenAddress", "%q is not an IP address; use one such as 127.0.0.1, or 0.0.0.0 for all", pm.ListenAddress)
	}
	switch pm.Protocol {
	case PortProtocolTCP, PortProtocolUDP, PortProtocolSCTP:
	default:
		v.errorf(path+".protocol", "unknown protocol %q; use TCP, UDP or SCTP", pm.Protocol)
	}
}

func (v *validator) networking(n *Networking) {
	family := n.IPFamily
	switch family {
	case IPv4Family, IPv6Family, DualStack:
	default:
		v.errorf("networking.ipFamily", "unknown ipFamily %q; use ipv4, ipv6 or dual", family)
		family = ""
	}
	switch n.KubeProxyMode {
	case IPTablesProxyMode, NFTablesProxyMode, IPVSProxyMode, NoneProxyMode:
	default:
		v.errorf("networking.kubeProxyMode", "unknown kubeProxyMode %q; use iptables, nftables, ipvs or none", n.KubeProxyMode)
	}
	if _, err := netip.ParseAddr(n.APIServerAddress); err != nil {
		v.errorf("networking.apiServerAddress", "%q is not an IP address; use one such as 127.0.0.1", n.APIServerAddress)
	}
	if n.APIServerPort < 0 || n.APIServerPort > 65535 {
		v.errorf("networking.apiServerPort", "%d is out of range; use a port from 1 to 65535, or leave it out (0) for a free one", n.APIServerPort)
	}
	pod := v.subnets("networking.podSubnet", n.PodSubnet, family)
	svc := v.subnets("networking.serviceSubnet", n.ServiceSubnet, family)
	for _, p := range pod {
		for _, s := range svc {
			if p.Overlaps(s) {
				v.errorf("networking.serviceSubnet", "%s overlaps podSubnet %s; choose ranges that do not overlap", s, p)
			}
		}
	}
}

// subnets parses a comma-separated list of CIDRs and checks it against the
// family: one v4, one v6, or one of each for dual stack.
func (v *validator) subnets(path, s string, family IPFamily) []netip.Prefix {
	var out []netip.Prefix
	v4, v6 := 0, 0
	for _, part := range strings.Split(s, ",") {
		p, err := netip.ParsePrefix(strings.TrimSpace(part))
		if err != nil {
			v.errorf(path, "%q is not a CIDR; write it like 10.244.0.0/16", strings.TrimSpace(part))
			return nil
		}
		if p.Addr().Is4() {
			v4++
		} else {
			v6++
		}
		out = append(out, p.Masked())
	}
	want := map[IPFamily]string{
		IPv4Family: "one IPv4 CIDR",
		IPv6Family: "one IPv6 CIDR",
		DualStack:  "one IPv4 and one IPv6 CIDR, comma-separated",
	}
	ok := map[IPFamily]bool{
		IPv4Family: v4 == 1 && v6 == 0,
		IPv6Family: v4 == 0 && v6 == 1,
		DualStack:  v4 == 1 && v6 == 1,
	}
	if family != "" && !ok[family] {
		v.errorf(path, "%q does not match ipFamily %s; give %s", s, family, want[family])
		return nil
	}
	return out
}

// boundPort is a host port some mapping (or the API server) listens on.
type boundPort struct {
	path  string
	addr  netip.Addr
	port  int32
	proto PortProtocol
}

// clashes says whether two listeners cannot both bind: same port and
// protocol on the same address, or one on the wildcard of the other's
// family ("::" usually takes IPv4 too).
func (b boundPort) clashes(o boundPort) bool {
	if b.port != o.port || b.proto != o.proto {
		return false
	}
	covers := func(w, a netip.Addr) bool {
		return w.IsUnspecified() && (w.Is6() || a.Is4())
	}
	return b.addr == o.addr || covers(b.addr, o.addr) || covers(o.addr, b.addr)
}

func (v *validator) hostPorts(c *Cluster) {
	var bound []boundPort
	for i, n := range c.Nodes {
		for j, pm := range n.ExtraPortMappings {
			addr, err := netip.ParseAddr(pm.ListenAddress)
			if pm.HostPort <= 0 || err != nil {
				continue
			}
			b := boundPort{indexPath(indexPath("nodes", i)+".extraPortMappings", j), addr.Unmap(), pm.HostPort, pm.Protocol}
			if k := slices.IndexFunc(bound, b.clashes); k >= 0 {
				v.errorf(b.path+".hostPort", "host port %d/%s on %s is already used by %s; pick another hostPort or listenAddress",
					b.port, b.proto, b.addr, v.where(bound[k].path))
				continue
			}
			bound = append(bound, b)
		}
	}
	n := c.Networking
	addr, err := netip.ParseAddr(n.APIServerAddress)
	if n.APIServerPort <= 0 || err != nil {
		return
	}
	api := boundPort{"networking.apiServerPort", addr.Unmap(), n.APIServerPort, PortProtocolTCP}
	if k := slices.IndexFunc(bound, api.clashes); k >= 0 {
		v.errorf(api.path, "port %d on %s is also the hostPort of %s; pick another apiServerPort or hostPort",
			api.port, api.addr, v.where(bound[k].path))
	}
}

// where names a field and its line for a message about another field.
func (v *validator) where(path string) string {
	if l := v.src.lineOf(path); l > 0 {
		return fmt.Sprintf("%s (line %d)", path, l)
	}
	return path
}
