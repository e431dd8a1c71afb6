package containerd

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"

	gocni "github.com/containerd/go-cni"

	"github.com/kinc-dev/kinc/runtime"
)

// cniID names a node's attachment in CNI's caches and iptables comments.
func (r *Runtime) cniID(name string) string {
	return r.namespace + "-" + name
}

// attach sets up the node's network in netns: an address kinc chose (the
// recorded one on a restart), published ports, then fresh /etc/hosts in
// every node of the network. A node without a network gets its lo up.
func (r *Runtime) attach(ctx context.Context, name, netns string) error {
	unlock, err := r.state.lock()
	if err != nil {
		return err
	}
	defer unlock()
	st, err := r.state.readNode(name)
	if err != nil {
		return fmt.Errorf("reading state of node %q: %w", name, err)
	}
	cni, n, err := r.cniFor(st.Network)
	if err != nil {
		return err
	}
	if st.Network != "" {
		if err := r.assignAddresses(&st, n); err != nil {
			return fmt.Errorf("attaching node %q to network %q: %w", name, n.Name, err)
		}
	}
	pin := r.netnsPin(name)
	if err := pinNetns(netns, pin); err != nil {
		return err
	}
	// Mark first: if Setup fails half-way, a later detach still releases
	// whatever it allocated.
	st.Attached, st.NetNS = true, pin
	if err := r.state.writeNode(st); err != nil {
		return err
	}
	if _, err := cni.Setup(ctx, r.cniID(name), pin, cniOpts(st)...); err != nil {
		return fmt.Errorf("attaching node %q to network %q: %w%s", name, n.Name, err, r.cniHint(err))
	}
	return r.refreshHosts(st.Network)
}

// cniHint tells how to fix the usual host problems behind a CNI failure.
func (r *Runtime) cniHint(err error) string {
	switch msg := err.Error(); {
	case strings.Contains(msg, "failed to find plugin"):
		return fmt.Sprintf(" (kinc needs the standard CNI plugins, bridge, host-local, loopback, portmap and firewall, in %s: install containernetworking-plugins)", strings.Join(r.cniBinDirs, " or "))
	case strings.Contains(msg, "iptables") && strings.Contains(msg, "not found"):
		return " (the CNI plugins need iptables on the host: install it)"
	}
	return ""
}

// assignAddresses picks the node's addresses unless it has them already,
// avoiding every address another node of the network holds, running or not.
func (r *Runtime) assignAddresses(st *nodeState, n networkState) error {
	nodes, err := r.state.nodes()
	if err != nil {
		return err
	}
	used := map[netip.Addr]bool{}
	for _, o := range nodes {
		if o.Name == st.Name || o.Network != st.Network {
			continue
		}
		for _, s := range []string{o.IPv4, o.IPv6} {
			if a, err := netip.ParseAddr(s); err == nil {
				used[a] = true
			}
		}
	}
	assign := func(cur *string, subnet, gateway string) error {
		p, err := netip.ParsePrefix(subnet)
		if err != nil {
			return fmt.Errorf("parsing subnet %q: %w", subnet, err)
		}
		gw := gatewayOf(p)
		if gateway != "" {
			if g, err := netip.ParseAddr(gateway); err == nil {
				gw = g
			}
		}
		if *cur != "" {
			a, err := netip.ParseAddr(*cur)
			if err != nil {
				return fmt.Errorf("parsing address %q: %w: %w", *cur, runtime.ErrInvalid, err)
			}
			if !p.Contains(a) || a == gw {
				return fmt.Errorf("address %s is not usable in %s: %w", a, p, runtime.ErrInvalid)
			}
			if used[a] {
				return fmt.Errorf("address %s: %w", a, runtime.ErrAlreadyExists)
			}
			return nil
		}
		a, err := pickIP(p, gw, used)
		if err != nil {
			return err
		}
		*cur = a.String()
		return nil
	}
	if err := assign(&st.IPv4, n.Subnet, n.Gateway); err != nil {
		return err
	}
	if n.SubnetV6 != "" {
		return assign(&st.IPv6, n.SubnetV6, "")
	} else if st.IPv6 != "" {
		return fmt.Errorf("address %s: network %q has no IPv6 subnet: %w", st.IPv6, n.Name, runtime.ErrInvalid)
	}
	return nil
}

// cniOpts pass the node's addresses (host-local's "ips" capability) and its
// published ports (portmap's "portMappings").
func cniOpts(st nodeState) []gocni.NamespaceOpts {
	var ips []string
	for _, s := range []string{st.IPv4, st.IPv6} {
		if s != "" {
			ips = append(ips, s)
		}
	}
	opts := []gocni.NamespaceOpts{gocni.WithCapability("ips", ips)}
	if len(st.Ports) > 0 {
		var pm []gocni.PortMapping
		for _, p := range st.Ports {
			pm = append(pm, gocni.PortMapping{
				HostPort:      int32(p.HostPort),
				ContainerPort: int32(p.ContainerPort),
				Protocol:      protocol(p.Protocol),
				HostIP:        p.ListenAddress,
			})
		}
		opts = append(opts, gocni.WithCapabilityPortMap(pm))
	}
	return opts
}

func protocol(p string) string {
	if p == "" {
		return "tcp"
	}
	return p
}

// detach tears the node's network down, releasing its host-local lease,
// masquerade and portmap rules, inside the pinned namespace (or none when
// the pin is gone, after a reboot), then drops the pin.
func (r *Runtime) detach(ctx context.Context, name string) error {
	unlock, err := r.state.lock()
	if err != nil {
		return err
	}
	defer unlock()
	return r.detachLocked(ctx, name)
}

// detachLocked is detach for a caller that holds the lock.
func (r *Runtime) detachLocked(ctx context.Context, name string) error {
	st, err := r.state.readNode(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("reading state of node %q: %w", name, err)
	}
	if !st.Attached {
		return nil
	}
	cni, _, err := r.cniFor(st.Network)
	if err != nil {
		return err
	}
	// Without the namespace the plugins release only what lives outside it.
	path := ""
	if st.NetNS != "" && isNetns(st.NetNS) {
		path = st.NetNS
	}
	if err := cni.Remove(ctx, r.cniID(name), path, cniOpts(st)...); err != nil {
		return fmt.Errorf("detaching node %q from network %q: %w", name, st.Network, err)
	}
	if err := unpinNetns(r.netnsPin(name)); err != nil {
		return err
	}
	st.Attached, st.NetNS = false, ""
	if err := r.state.writeNode(st); err != nil {
		return err
	}
	return r.refreshHosts(st.Network)
}

// refreshHosts rewrites /etc/hosts of every node on a network. The files
// are bind-mounted, so they are rewritten in place, not replaced. The caller
// holds the lock.
func (r *Runtime) refreshHosts(network string) error {
	if network == "" {
		return nil
	}
	nodes, err := r.state.nodes()
	if err != nil {
		return err
	}
	var members []nodeState
	for _, n := range nodes {
		if n.Network == network {
			members = append(members, n)
		}
	}
	entry := func(n nodeState) hostEntry {
		return hostEntry{IPv4: n.IPv4, IPv6: n.IPv6, Names: append([]string{n.Hostname, n.Name}, n.Aliases...)}
	}
	for _, self := range members {
		var peers []hostEntry
		for _, p := range members {
			if p.Name != self.Name && p.Attached {
				peers = append(peers, entry(p))
			}
		}
		path := r.state.files(self.Name).hosts
		if err := os.WriteFile(path, renderHosts(entry(self), peers), 0o644); err != nil {
			return fmt.Errorf("writing hosts of node %q: %w", self.Name, err)
		}
	}
	return nil
}
