package cluster

import (
	"fmt"
	"net/netip"

	"github.com/kinc-dev/kinc/cluster/config"
	"github.com/kinc-dev/kinc/runtime"
)

// Addresses are a node's fixed addresses on the cluster network. Networks
// of ipv6 and dual clusters carry both families; IPv6 is empty otherwise.
type Addresses struct {
	IPv4 string `json:"ipv4,omitempty"`
	IPv6 string `json:"ipv6,omitempty"`
}

// Primary is the address the cluster's components use for the node: the
// IPv6 one in an ipv6 cluster, the IPv4 one otherwise (dual stack
// advertises IPv4 first, as kubeadm does).
func (a Addresses) Primary(f config.IPFamily) string {
	if f == config.IPv6Family {
		return a.IPv6
	}
	return a.IPv4
}

// NodeIP is kubelet's --node-ip: both families, comma-separated, in a
// dual-stack cluster.
func (a Addresses) NodeIP(f config.IPFamily) string {
	if f == config.DualStack {
		return a.IPv4 + "," + a.IPv6
	}
	return a.Primary(f)
}

// assignAddresses gives every named container fixed addresses in the
// network's subnets, skipping the gateway, each subnet's first address
// (the usual gateway) and the addresses in taken. Fixed, because etcd and
// kubeadm's configs are bound to them, so they must survive a restart.
func assignAddresses(n runtime.Network, names []string, taken []string) (map[string]Addresses, error) {
	used := map[netip.Addr]bool{}
	for _, s := range append([]string{n.Gateway}, taken...) {
		if a, err := netip.ParseAddr(s); err == nil {
			used[a.Unmap()] = true
		}
	}
	next := func(subnet string) (func() (string, error), error) {
		prefix, err := netip.ParsePrefix(subnet)
		if err != nil {
			return nil, err
		}
		prefix = prefix.Masked()
		addr := prefix.Addr().Next().Next() // past the network and first addresses
		return func() (string, error) {
			for used[addr] {
				addr = addr.Next()
			}
			if !prefix.Contains(addr) {
				return "", fmt.Errorf("network %s (%s) has no room for %d more nodes", n.Name, subnet, len(names))
			}
			a := addr
			addr = addr.Next()
			return a.String(), nil
		}, nil
	}
	nextV4, err := next(n.Subnet)
	if err != nil {
		return nil, fmt.Errorf("network %s has no usable IPv4 subnet (%q): %w", n.Name, n.Subnet, err)
	}
	var nextV6 func() (string, error)
	if n.SubnetV6 != "" {
		if nextV6, err = next(n.SubnetV6); err != nil {
			return nil, fmt.Errorf("network %s has an unusable IPv6 subnet (%q): %w", n.Name, n.SubnetV6, err)
		}
	}
	out := map[string]Addresses{}
	for _, name := range names {
		var a Addresses
		if a.IPv4, err = nextV4(); err != nil {
			return nil, err
		}
		if nextV6 != nil {
			if a.IPv6, err = nextV6(); err != nil {
				return nil, err
			}
		}
		out[name] = a
	}
	return out, nil
}
