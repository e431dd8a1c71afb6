package containerd

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
)

// cniVersion is the newest spec version Debian 12's plugins (v1.1.1) speak.
const cniVersion = "1.0.0"

// bridgeName is short enough for IFNAMSIZ (15) and unique per namespace and
// network.
func bridgeName(namespace, network string) string {
	sum := sha256.Sum256([]byte(namespace + "/" + network))
	return "kinc-" + hex.EncodeToString(sum[:4])
}

// cniName is the CNI network name; host-local keeps its leases under
// /var/lib/cni/networks/<cniName>.
func cniName(namespace, network string) string {
	return namespace + "-" + network
}

type ipamRange struct {
	Subnet  string `json:"subnet"`
	Gateway string `json:"gateway,omitempty"`
}

type route struct {
	Dst string `json:"dst"`
}

type ipam struct {
	Type   string        `json:"type"`
	Ranges [][]ipamRange `json:"ranges"`
	Routes []route       `json:"routes"`
}

type pluginConf struct {
	Type         string          `json:"type"`
	Bridge       string          `json:"bridge,omitempty"`
	IsGateway    bool            `json:"isGateway,omitempty"`
	IPMasq       bool            `json:"ipMasq,omitempty"`
	HairpinMode  bool            `json:"hairpinMode,omitempty"`
	Capabilities map[string]bool `json:"capabilities,omitempty"`
	IPAM         *ipam           `json:"ipam,omitempty"`
	Backend      string          `json:"backend,omitempty"`
}

type conflist struct {
	CNIVersion string       `json:"cniVersion"`
	Name       string       `json:"name"`
	Plugins    []pluginConf `json:"plugins"`
}

// renderConflist is the CNI config of a network: a bridge that is the
// gateway and masquerades, host-local addresses (a fixed one may be asked
// for through the "ips" capability), portmap for published ports, and the
// firewall plugin so that forwarding works even when the host's FORWARD
// policy is DROP (as dockerd leaves it).
func renderConflist(n networkState) ([]byte, error) {
	v4, err := netip.ParsePrefix(n.Subnet)
	if err != nil {
		return nil, fmt.Errorf("parsing subnet %q of network %q: %w", n.Subnet, n.Name, err)
	}
	ranges := [][]ipamRange{{{Subnet: v4.Masked().String(), Gateway: n.Gateway}}}
	routes := []route{{Dst: "0.0.0.0/0"}}
	if n.SubnetV6 != "" {
		v6, err := netip.ParsePrefix(n.SubnetV6)
		if err != nil {
			return nil, fmt.Errorf("parsing subnet %q of network %q: %w", n.SubnetV6, n.Name, err)
		}
		ranges = append(ranges, []ipamRange{{Subnet: v6.Masked().String(), Gateway: gatewayOf(v6).String()}})
		routes = append(routes, route{Dst: "::/0"})
	}
	c := conflist{
		CNIVersion: cniVersion,
		Name:       n.CNIName,
		Plugins: []pluginConf{
			{
				Type:         "bridge",
				Bridge:       n.Bridge,
				IsGateway:    true,
				IPMasq:       true,
				HairpinMode:  true,
				Capabilities: map[string]bool{"ips": true},
				IPAM:         &ipam{Type: "host-local", Ranges: ranges, Routes: routes},
			},
			{Type: "portmap", Capabilities: map[string]bool{"portMappings": true}},
			{Type: "firewall", Backend: "iptables"},
		},
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// gatewayOf is the first address of a subnet, where the bridge sits.
func gatewayOf(p netip.Prefix) netip.Addr {
	return p.Masked().Addr().Next()
}

// pickIP returns the lowest address of subnet after the gateway that is not
// in used. kinc chooses addresses itself, rather than leaving it to
// host-local, so that a stopped node keeps its address for its restart.
func pickIP(subnet netip.Prefix, gateway netip.Addr, used map[netip.Addr]bool) (netip.Addr, error) {
	subnet = subnet.Masked()
	a := subnet.Addr().Next()
	for ; subnet.Contains(a); a = a.Next() {
		if a == gateway || used[a] {
			continue
		}
		// Skip the IPv4 broadcast address.
		if a.Is4() && !subnet.Contains(a.Next()) {
			break
		}
		return a, nil
	}
	return netip.Addr{}, fmt.Errorf("no free address left in %s", subnet)
}
